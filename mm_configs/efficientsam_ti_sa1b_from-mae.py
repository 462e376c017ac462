_base_ = ["./efficientsam_ti_sa1b.py"]
# SAM-MAE-Ti (paper Table 4): EfficientSAM-Ti finetuned on SA-1B exactly as efficientsam_ti_sa1b.py, from an
# MAE-pretrained encoder (mae_pretrain_vit-ti_in1k.py, exported with efficientsam_zoo.tools.export_backbone).
model = dict(init_checkpoint="checkpoints/mae_vit-ti.safetensors")
