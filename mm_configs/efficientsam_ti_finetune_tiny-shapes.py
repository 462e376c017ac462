# Finetuning that learns in a few minutes on a CPU, for the tests: the mask-folder layout (data_root/images/,
# data_root/masks/) of generated scenes at 128 px, starting from the quickstart's EfficientSAM (the 6-block ViT-Ti it
# trains; --checkpoint QUICKSTART_OUT/model), 4 masks per image, the decoder recipe at lr 1e-3, 150 iterations.
# Set data_root (or use efficientsam-zoo finetune --config efficientsam_ti_finetune_tiny-shapes).
_base_ = ["./recipes/efficientsam_finetune_decoder.py"]

img_size = 128
model = dict(overrides=dict(img_size=img_size, depth=6), init_checkpoint=None)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        sampler=dict(_delete_=True, type="InfiniteSampler", shuffle=True),
                        dataset=dict(img_size=img_size, max_masks=4))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_iters = 150
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=15),
                   dict(type="CosineAnnealingLR", T_max=max_iters - 15, eta_min_ratio=0.01,
                        by_epoch=False, begin=15, end=max_iters)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=50, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
