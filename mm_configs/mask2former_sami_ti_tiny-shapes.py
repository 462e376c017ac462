_base_ = ["./mask2former_sami_ti_8xb2-160k_ade20k-512x512.py"]
# Mask2Former that learns in minutes on a CPU: generated ADE20K-layout scenes (efficientsam_zoo.data.synthetic:
# background "wall" + 3 shape classes) at 128 px. The shipped backbone, simple pyramid and Mask2Former head with
# smaller widths (64 channels, 10 queries, 2 decoder / 1 encoder layers, 512 sampled points) and a larger lr. Set
# data_root with --cfg-options (tests and the quickstart generate one).
crop_size = (128, 128)
width = 64
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=128, depth=6, window_size=4, drop_path_rate=0.0, init_cfg=None),
    neck=dict(out_channels=width),
    decode_head=dict(
        in_channels=[width] * 4, feat_channels=width, out_channels=width, num_queries=10,
        pixel_decoder=dict(
            encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=dict(embed_dims=width, num_heads=4),
                                                      ffn_cfg=dict(embed_dims=width, feedforward_channels=4 * width))),
            positional_encoding=dict(num_feats=width // 2)),
        positional_encoding=dict(num_feats=width // 2),
        transformer_decoder=dict(num_layers=2, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=width, num_heads=4), cross_attn_cfg=dict(embed_dims=width, num_heads=4),
            ffn_cfg=dict(embed_dims=width, feedforward_channels=4 * width))),
        train_cfg=dict(num_points=512)),
)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="RandomResize", scale=(128, 128), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(128, 128), keep_ratio=True),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        sampler=dict(type="InfiniteSampler", shuffle=True), dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=1e-3, fused=True))
max_iters = 300
param_scheduler = [dict(type="PolyLR", eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=100, max_keep_ckpts=2, save_best=None),
                     visualization=dict(draw=False))
env_cfg = dict(dist_cfg=dict(backend="gloo"))
