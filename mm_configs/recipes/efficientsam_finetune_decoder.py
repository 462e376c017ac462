# The image encoder frozen and its embeddings cached per image (set model.embedding_cache; efficientsam-zoo finetune
# puts it in the run directory), so an epoch costs only the prompt encoder and mask decoder. AdamW 4e-4.
_base_ = ["../_base_/efficientsam_finetune_default.py"]

model = dict(recipe="decoder")
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=4e-4, betas=(0.9, 0.999), weight_decay=0.1),
                     clip_grad=dict(max_norm=1.0))
