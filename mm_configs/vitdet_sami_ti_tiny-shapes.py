_base_ = ["./vitdet_sami_ti.py"]
# ViTDet Mask R-CNN that learns in minutes on a CPU: generated shapes (efficientsam_zoo.data.synthetic, 3 classes,
# the shape is the class) at 128 px. The backbone (a 6-block ViT-Ti), simple pyramid and layer-decay optimiser are
# the shipped ones; widths are smaller (pyramid and heads 32 channels, 64 sampled anchors and 32 RoIs per image, half
# of them positive), and the lr stays above half its peak. Set the data roots and annotation files with
# --cfg-options (tests and the quickstart generate a COCO-format set); a SAMI export goes in with
# model.backbone.init_cfg=dict(_delete_=True, type="Pretrained", checkpoint=...).
image_size = (128, 128)
classes = ("person", "bicycle", "car")  # the generated shapes' category ids 1, 2, 3
width = 32
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type="BatchFixedSizePad", size=image_size, pad_mask=True)]),
    backbone=dict(img_size=128, depth=6, window_size=4, drop_path_rate=0.0, init_cfg=None),
    neck=dict(out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, conv_out_channels=width, fc_out_channels=256, num_classes=len(classes)),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=len(classes))),
    train_cfg=dict(rpn=dict(sampler=dict(num=64)), rpn_proposal=dict(nms_pre=256, max_per_img=64),
                   rcnn=dict(sampler=dict(num=32, pos_fraction=0.5))),
    test_cfg=dict(rpn=dict(nms_pre=256, max_per_img=64), rcnn=dict(score_thr=0.05, max_per_img=20)),
)
train_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="Resize", scale=image_size, keep_ratio=True),
    dict(type="Pad", size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile"),
    dict(type="Resize", scale=image_size, keep_ratio=True),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
metainfo = dict(classes=classes)
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(metainfo=metainfo, filter_cfg=dict(filter_empty_gt=True, min_size=4),
                                     pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(metainfo=metainfo, pipeline=test_pipeline))
test_dataloader = val_dataloader
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(lr=1e-3, fused=True))
max_iters = 400
param_scheduler = [dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=20),
                   dict(type="CosineAnnealingLR", T_max=max_iters - 20, eta_min=5e-4, by_epoch=False, begin=20,
                        end=max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters, dynamic_intervals=None)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=100, max_keep_ckpts=2),
                     visualization=dict(draw=False))
log_processor = dict(window_size=10)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
