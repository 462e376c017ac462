_base_ = ["./efficientsam_ti_sa1b.py"]
# EfficientSAM-Ti finetuning that learns in minutes on a CPU: generated SA-1B-layout shards of shapes
# (efficientsam_zoo.data.synthetic.make_sa1b_shards) at 128 px instead of 1024 with a 6-block encoder, 4 masks per
# image, one prompt round (a box or a point), lr 1e-3 with a short warm-up and linear decay. Set
# train_dataloader.dataset.paths (and model.init_checkpoint, e.g. the export of sami_pretrain_vit-ti_tiny-shapes)
# with --cfg-options.
img_size = 128
model = dict(overrides=dict(img_size=img_size, depth=6), init_checkpoint=None, iterative_rounds=0)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        sampler=dict(_delete_=True, type="InfiniteSampler", shuffle=True),
                        dataset=dict(img_size=img_size, max_masks=4))
optim_wrapper = dict(optimizer=dict(lr=1e-3, fused=True))
auto_scale_lr = dict(enable=False)
max_iters = 400
param_scheduler = [dict(type="LinearLR", start_factor=0.05, by_epoch=False, begin=0, end=10),
                   dict(type="LinearLR", start_factor=1.0, end_factor=0.0, by_epoch=False, begin=10, end=max_iters)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
