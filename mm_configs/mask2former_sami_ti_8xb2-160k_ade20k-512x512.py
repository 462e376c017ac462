_base_ = ["./_base_/mask2former_sami_8xb2-160k_ade20k-512x512.py"]
# Mask2Former, SAMI-ti backbone (192-d), ADE20K 512x512, 160k iterations.
model = dict(
    backbone=dict(arch="vit-ti", init_cfg=dict(type="Pretrained", checkpoint="checkpoints/sami_vit-ti.safetensors")),
    neck=dict(in_channels=192),
)
