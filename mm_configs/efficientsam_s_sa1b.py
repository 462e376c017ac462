_base_ = ["./_base_/efficientsam_sa1b_default.py"]
# EfficientSAM-S from a SAMI-S encoder, SA-1B, 5 epochs.
model = dict(variant="efficientsam-s", init_checkpoint="checkpoints/sami_vit-s.safetensors")
