# ViTDet Mask R-CNN, SAMI-B backbone, COCO, LSJ 1024, 100 epochs (recipe in ../common/mask_rcnn_vitdet_sami_100ep.py).
from ..common.mask_rcnn_vitdet_sami_100ep import dataloader, lr_multiplier, model, optimizer, train  # noqa: F401

model.backbone.net.arch = "vit-b"
train.init_checkpoint = "checkpoints/sami_vit-b.safetensors"
