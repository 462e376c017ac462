# EfficientSAM-S finetuned on a mask folder: data_root/images/NAME.ext with data_root/masks/NAME.png (one
# instance-id PNG, 8 or 16 bit, 0 = background) or data_root/masks/NAME/*.png (one binary PNG per instance). Edit
# data_root. The recipe: full (see mm_configs/recipes/; efficientsam-zoo finetune --recipe decoder|lora switches it).
_base_ = ["./recipes/efficientsam_finetune_full.py"]  # _base_/efficientsam_finetune_default.py, recipe full

data_root = "data/mine/"
model = dict(variant="efficientsam-s", init_checkpoint="weights/efficient_sam_vits.pt")
train_dataloader = dict(dataset=dict(data_root=data_root, ann_file=None,
                                     data_prefix=dict(img="images/", masks="masks/")))
