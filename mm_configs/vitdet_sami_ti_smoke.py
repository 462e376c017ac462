_base_ = ["./vitdet_sami_ti.py"]
# A few CPU iterations + one COCO evaluation on 128-px images: set the data roots / annotation file with
# --cfg-options (tests generate a COCO-format set). Random backbone weights unless init_cfg is given.
image_size = (128, 128)
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type="BatchFixedSizePad", size=image_size, pad_mask=True)]),
    backbone=dict(img_size=128, window_size=4, drop_path_rate=0.0, init_cfg=None),
    rpn_head=dict(anchor_generator=dict(scales=[2])),
    # keep every detection so that a few-iteration model still gives COCOeval something to score
    test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=20)),
)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="RandomResize", scale=image_size, ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type="RandomCrop", crop_type="absolute_range", crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type="FilterAnnotations", min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type="Pad", size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=image_size, keep_ratio=True),
    # no Pad here: mmcv's Pad would set img_shape to the padded size and boxes would not be clipped to
    # the image; the data preprocessor pads the batch to a multiple of 32 instead
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(lr=1e-4))
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2)]
train_cfg = dict(max_iters=4, val_interval=4, dynamic_intervals=None)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=4, max_keep_ckpts=1),
                     visualization=dict(draw=False))
env_cfg = dict(dist_cfg=dict(backend="gloo"))
