# EfficientTAM-Ti on a DAVIS-format dataset (DAVIS, YouTube-VOS, MOSE, or your own): JPEGImages/<video>/*.jpg and palette
# PNGs Annotations/<video>/*.png under data_root; only annotated frames make clips. SAM 2's recipe
# (_base_/efficienttam_default.py); start from a SAMI export, an EfficientSAM checkpoint or an EfficientTAM release.
_base_ = ["./_base_/efficienttam_default.py"]

model = dict(variant="efficienttam-ti")
train_dataloader = dict(dataset=dict(layout="davis", data_root="data/davis/"))
