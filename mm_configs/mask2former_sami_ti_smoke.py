_base_ = ["./mask2former_sami_ti_8xb2-160k_ade20k-512x512.py"]
# A few CPU iterations + one IoUMetric evaluation on 128-px crops of an ADE20K-layout folder (set data_root with
# --cfg-options; tests generate one). Random backbone weights unless init_cfg is given.
crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(img_size=128, window_size=4, drop_path_rate=0.0, init_cfg=None),
    decode_head=dict(num_queries=20, transformer_decoder=dict(num_layers=2),
                     pixel_decoder=dict(encoder=dict(num_layers=1)), train_cfg=dict(num_points=1024)),
)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="RandomResize", scale=(160, 128), ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type="RandomCrop", crop_size=crop_size, cat_max_ratio=0.75),
    dict(type="RandomFlip", prob=0.5),
    dict(type="PackSegInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=(160, 128), keep_ratio=True),
    dict(type="LoadAnnotations", reduce_zero_label=True),
    dict(type="PackSegInputs"),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        sampler=dict(type="InfiniteSampler", shuffle=True), dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [dict(type="PolyLR", eta_min=0, power=0.9, begin=0, end=4, by_epoch=False)]
train_cfg = dict(max_iters=4, val_interval=4)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=4, save_best=None),
                     visualization=dict(draw=False))
env_cfg = dict(dist_cfg=dict(backend="gloo"))
