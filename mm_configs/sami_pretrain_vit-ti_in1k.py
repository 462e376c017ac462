_base_ = ["./_base_/sami_pretrain_default.py"]
# SAMI-Ti on ImageNet-1K, SAM ViT-H teacher, 400 epochs (paper section 4.1).
model = dict(student=dict(arch="vit-ti", img_size=224))
