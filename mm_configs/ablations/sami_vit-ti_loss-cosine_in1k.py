_base_ = ["../sami_pretrain_vit-ti_in1k.py"]
# Paper Table 6: SAMI-Ti with the 1 - cosine reconstruction loss instead of MSE (76.1 vs 76.8 top-1).
model = dict(loss="cosine")
