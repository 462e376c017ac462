# EfficientSAM-TI finetuned on a COCO-format instances JSON (polygons or RLE; iscrowd entries skipped; an LVIS
# JSON works too). Edit data_root and ann_file; the images are data_root/images/. The recipe: full (see
# mm_configs/recipes/; efficientsam-zoo finetune --recipe decoder|lora switches it).
_base_ = ["./recipes/efficientsam_finetune_full.py"]  # _base_/efficientsam_finetune_default.py, recipe full

data_root = "data/mine/"
ann_file = "annotations/instances_train.json"
model = dict(variant="efficientsam-ti", init_checkpoint="weights/efficient_sam_vitt.pt")
train_dataloader = dict(dataset=dict(data_root=data_root, ann_file=ann_file, data_prefix=dict(img="images/")))
