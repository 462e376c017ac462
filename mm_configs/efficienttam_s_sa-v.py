# EfficientTAM-S on SA-V (<video>.mp4 + <video>_manual.json under data_root; frames decoded from the mp4s as clips
# need them, annotations every 4th frame) with SAM 2's recipe (_base_/efficienttam_default.py). Start from a SAMI
# export or an EfficientSAM checkpoint: --cfg-options model.init_checkpoint=weights/efficient_sam_vits.pt
_base_ = ["./_base_/efficienttam_default.py"]

model = dict(variant="efficienttam-s")
train_dataloader = dict(dataset=dict(layout="sa-v", data_root="data/sa-v/sav_train/"))
