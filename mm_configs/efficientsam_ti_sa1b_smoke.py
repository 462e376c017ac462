_base_ = ["./efficientsam_ti_sa1b.py"]
# A few CPU iterations on generated SA-1B shards (set train_dataloader.dataset.paths with --cfg-options):
# EfficientSAM-Ti at 256 px, random init, 4 masks per image.
model = dict(overrides=dict(img_size=256), init_checkpoint=None)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        sampler=dict(_delete_=True, type="InfiniteSampler", shuffle=True),
                        dataset=dict(img_size=256, max_masks=4))
optim_wrapper = dict(optimizer=dict(lr=2e-4))
auto_scale_lr = dict(enable=False)
param_scheduler = [dict(type="LinearLR", start_factor=1.0, end_factor=0.1, by_epoch=False, begin=0, end=8)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=8)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=4, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
