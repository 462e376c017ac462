# Every parameter trains; the image encoder with layer-wise lr decay (0.8 per block from the top, as ViT finetuning
# does), AdamW 1e-4.
_base_ = ["../_base_/efficientsam_finetune_default.py"]

model = dict(recipe="full")
optim_wrapper = dict(type="OptimWrapper", constructor="SamiLayerDecayOptimizerConstructor",
                     optimizer=dict(type="AdamW", lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
                     paramwise_cfg=dict(decay_rate=0.8), clip_grad=dict(max_norm=1.0))
