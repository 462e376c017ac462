# ViTDet Mask R-CNN that learns in minutes on a CPU: generated shapes (efficientsam_zoo.data.synthetic, 3 classes, the
# shape is the class) at 128 px, SimpleTrainer, no AMP. detectron2's own pyramid, RPN and RoI heads with smaller
# widths (32 channels, 64 anchors and 32 RoIs per image, half of them positive) around a 6-block ViT-Ti; the
# layer-decay rule follows the backbone's depth. Register a COCO-format dataset and point
# dataloader.train.dataset.names / dataloader.test.dataset.names at it (tests and tools.d2_train --register-coco do).
from functools import partial

import detectron2.data.transforms as T
from detectron2.config import LazyCall as L

from efficientsam_zoo.integrations.detectron2 import get_sami_vit_lr_decay_rate

from .mask_rcnn_vitdet_sami_ti_100ep import dataloader, lr_multiplier, model, optimizer, train  # noqa: F401

size, depth, width, classes = 128, 6, 32, 3
model.backbone.net.update(img_size=size, depth=depth, window_size=4, drop_path_rate=0.0)
model.backbone.update(square_pad=size, out_channels=width)
model.proposal_generator.head.in_channels = width
model.proposal_generator.anchor_generator.sizes = [[16], [32], [64], [128], [256]]
model.proposal_generator.update(batch_size_per_image=64, pre_nms_topk=[256, 256], post_nms_topk=[64, 64])
model.roi_heads.update(num_classes=classes, batch_size_per_image=32, positive_fraction=0.5)
model.roi_heads.box_head.update(conv_dims=[width] * 4, fc_dims=[256])
model.roi_heads.box_head.input_shape.channels = width
model.roi_heads.mask_head.update(conv_dims=[width] * 5)
model.roi_heads.mask_head.input_shape.channels = width
model.roi_heads.box_predictor.input_shape.channels = 256
model.roi_heads.box_predictor.update(test_score_thresh=0.05, test_topk_per_image=20)
dataloader.train.mapper.augmentations = [
    L(T.RandomFlip)(horizontal=True),
    L(T.ResizeShortestEdge)(short_edge_length=size, max_size=size),
]
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=size, max_size=size)]
dataloader.train.total_batch_size = 2
dataloader.train.num_workers = 0
dataloader.test.num_workers = 0
train.amp.enabled = False
train.ddp.fp16_compression = False
train.device = "cpu"
train.seed = 0  # seeds the data order too: runs repeat
train.init_checkpoint = ""
train.max_iter = 400
train.eval_period = 400
train.log_period = 20
train.checkpointer.period = 100
lr_multiplier.warmup_length = 20 / 400
lr_multiplier.scheduler.end_value = 0.5  # cosine to half the peak lr
optimizer.lr = 1e-3
optimizer.params.lr_factor_func = partial(get_sami_vit_lr_decay_rate, num_layers=depth, lr_decay_rate=0.7)
