_base_ = ["./_base_/efficientsam_sa1b_default.py"]
# EfficientSAM-Ti from a SAMI-Ti encoder, SA-1B, 5 epochs.
model = dict(variant="efficientsam-ti", init_checkpoint="checkpoints/sami_vit-ti.safetensors")
