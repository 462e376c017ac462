# ViTDet Mask R-CNN with a SAMI ViT backbone on COCO (paper section 4.1, following ViTDet):
# large-scale jitter at 1024, AdamW lr 2e-4 betas (0.9, 0.999) weight decay 0.1, layer-wise lr decay 0.7,
# 10-epoch linear warm-up then cosine to 0, 100 epochs, batch 64 (1 image per GPU on 64 GPUs), AMP.
_base_ = ["mmdet::_base_/models/mask-rcnn_r50_fpn.py", "mmdet::_base_/default_runtime.py"]
custom_imports = dict(imports=["efficientsam_zoo.integrations.openmmlab.mmdet"], allow_failed_imports=False)

image_size = (1024, 1024)
norm_cfg = dict(type="LN2d", requires_grad=True)
model = dict(
    data_preprocessor=dict(pad_size_divisor=32, batch_augments=[dict(type="BatchFixedSizePad", size=image_size,
                                                                     pad_mask=True)]),
    # ViTDet's form of the ViT (windows 14 except blocks 2/5/8/11, rel-pos, drop path 0.1) is SamiViT's default
    backbone=dict(_delete_=True, type="SamiViT", arch="vit-s", img_size=1024,
                  init_cfg=dict(type="Pretrained", checkpoint="checkpoints/sami_vit-s.safetensors")),
    neck=dict(_delete_=True, type="SamiSimpleFPN", in_channels=384, out_channels=256, num_outs=5),
    rpn_head=dict(num_convs=2),
    roi_head=dict(bbox_head=dict(type="Shared4Conv1FCBBoxHead", conv_out_channels=256, norm_cfg=norm_cfg),
                  mask_head=dict(norm_cfg=norm_cfg)),
)

dataset_type = "CocoDataset"
data_root = "data/coco/"
backend_args = None
train_pipeline = [
    dict(type="LoadImageFromFile", backend_args=backend_args),
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="RandomFlip", prob=0.5),
    dict(type="RandomResize", scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type="RandomCrop", crop_type="absolute_range", crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type="FilterAnnotations", min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type="Pad", size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadImageFromFile", backend_args=backend_args),
    dict(type="Resize", scale=image_size, keep_ratio=True),
    # no Pad here: mmcv's Pad would set img_shape to the padded size and boxes would not be clipped to
    # the image; the data preprocessor pads the batch to a multiple of 32 instead
    dict(type="LoadAnnotations", with_bbox=True, with_mask=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True, sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="annotations/instances_train2017.json",
                 data_prefix=dict(img="train2017/"), filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True, drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, ann_file="annotations/instances_val2017.json",
                 data_prefix=dict(img="val2017/"), test_mode=True, pipeline=test_pipeline,
                 backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(type="CocoMetric", ann_file=data_root + "annotations/instances_val2017.json",
                     metric=["bbox", "segm"], format_only=False, backend_args=backend_args)
test_evaluator = val_evaluator

optim_wrapper = dict(
    type="AmpOptimWrapper",
    constructor="SamiLayerDecayOptimizerConstructor",
    paramwise_cfg=dict(decay_rate=0.7),  # num_layers: the ViT depth, read off the model
    optimizer=dict(type="AdamW", lr=2e-4, betas=(0.9, 0.999), weight_decay=0.1),
)
auto_scale_lr = dict(base_batch_size=64, enable=False)

# 100 epochs = 184375 iterations of 64 images over COCO train2017's 118k images; warm-up 10 epochs.
max_iters = 184375
warmup_iters = 18437
interval = 5000
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=False, begin=0, end=warmup_iters),
    dict(type="CosineAnnealingLR", T_max=max_iters - warmup_iters, eta_min=0.0, by_epoch=False,
         begin=warmup_iters, end=max_iters),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=interval,
                 dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(logger=dict(type="LoggerHook", interval=50),
                     checkpoint=dict(type="CheckpointHook", by_epoch=False, save_last=True, interval=interval,
                                     max_keep_ckpts=5))
log_processor = dict(type="LogProcessor", window_size=50, by_epoch=False)
# A fixed seed (the sampler's too): runs repeat, and --resume continues exactly where a run stopped.
randomness = dict(seed=0, diff_rank_seed=True)
