_base_ = ["./_base_/mask2former_sami_8xb2-160k_ade20k-512x512.py"]
# Mask2Former, SAMI-s backbone (384-d), ADE20K 512x512, 160k iterations.
model = dict(
    backbone=dict(arch="vit-s", init_cfg=dict(type="Pretrained", checkpoint="checkpoints/sami_vit-s.safetensors")),
    neck=dict(in_channels=384),
)
