_base_ = ["./_base_/vitdet_sami_mask-rcnn_lsj-100e_coco.py"]
# ViTDet Mask R-CNN, SAMI-ti backbone (192-d), COCO, LSJ 1024, 100 epochs. Pretrained weights: a SAMI
# export (efficientsam-zoo export-backbone), an official EfficientSAM checkpoint or an HF SamiViTModel dir.
model = dict(
    backbone=dict(arch="vit-ti", init_cfg=dict(type="Pretrained", checkpoint="checkpoints/sami_vit-ti.safetensors")),
    neck=dict(in_channels=192),
)
