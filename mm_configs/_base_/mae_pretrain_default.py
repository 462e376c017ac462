# MAE baseline recipe (paper Tables 1-4, MAE rows), shared by mae_pretrain_vit-{ti,s,b}_in1k.py: the same ViT,
# masking, data and runner as SAMI (sami_pretrain_default.py); only the target and the decoder differ --
# per-patch normalised pixels (norm_pix_loss), the loss on the masked patches, MAE's decoder over all tokens
# (8 blocks, 512-d). MAE's recipe: AdamW base lr 1.5e-4 per 256 images (= 2.4e-3 at batch 4096, as SAMI),
# betas (0.9, 0.95), weight decay 0.05, 40 warm-up epochs then cosine, 1600 epochs.
_base_ = ["./sami_pretrain_default.py"]

model = dict(teacher=None, target="pixels", decoder=dict(queries="all"))
max_epochs = 1600
warmup_epochs = 40
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
