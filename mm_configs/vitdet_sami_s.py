_base_ = ["./_base_/vitdet_sami_mask-rcnn_lsj-100e_coco.py"]
# ViTDet Mask R-CNN, SAMI-s backbone (384-d), COCO, LSJ 1024, 100 epochs. Pretrained weights: a SAMI
# export (efficientsam-zoo export-backbone), an official EfficientSAM checkpoint or an HF SamiViTModel dir.
model = dict(
    backbone=dict(arch="vit-s", init_cfg=dict(type="Pretrained", checkpoint="checkpoints/sami_vit-s.safetensors")),
    neck=dict(in_channels=384),
)
