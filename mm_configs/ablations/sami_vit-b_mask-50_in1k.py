_base_ = ["../sami_pretrain_vit-b_in1k.py"]
# Paper Table 7: SAMI-B with mask ratio 0.50 (0.75 is the default).
model = dict(mask_ratio=0.50)
