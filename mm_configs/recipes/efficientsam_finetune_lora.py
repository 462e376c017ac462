# LoRA (peft) on the image encoder's attention projections, rank 8, its own weights frozen; the prompt encoder and
# mask decoder train. Exports merge the adapters into plain weights (loading needs no peft). AdamW 4e-4.
_base_ = ["../_base_/efficientsam_finetune_default.py"]

model = dict(recipe="lora", lora=dict(rank=8, alpha=16.0))
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=4e-4, betas=(0.9, 0.999), weight_decay=0.1),
                     clip_grad=dict(max_norm=1.0))
