# A few CPU iterations + a COCOEvaluator pass at 128 px. Register a COCO-format dataset and point
# dataloader.train.dataset.names / dataloader.test.dataset.names at it (tests do), plain SimpleTrainer, no AMP.
import detectron2.data.transforms as T
from detectron2.config import LazyCall as L

from .mask_rcnn_vitdet_sami_ti_100ep import dataloader, lr_multiplier, model, optimizer, train  # noqa: F401

size = 128
model.backbone.net.img_size = size
model.backbone.net.window_size = 4
model.backbone.net.drop_path_rate = 0.0
model.backbone.square_pad = size
model.roi_heads.box_predictor.test_score_thresh = 0.0
model.roi_heads.box_predictor.test_topk_per_image = 20
dataloader.train.mapper.augmentations = [
    L(T.RandomFlip)(horizontal=True),
    L(T.ResizeScale)(min_scale=0.8, max_scale=1.2, target_height=size, target_width=size),
    L(T.FixedSizeCrop)(crop_size=(size, size), pad=False),
]
dataloader.test.mapper.augmentations = [L(T.ResizeShortestEdge)(short_edge_length=size, max_size=size)]
dataloader.train.total_batch_size = 2
dataloader.train.num_workers = 0
dataloader.test.num_workers = 0
train.amp.enabled = False
train.ddp.fp16_compression = False
train.device = "cpu"
train.init_checkpoint = ""
train.max_iter = 4
train.eval_period = 4
train.log_period = 1
train.checkpointer.period = 2
lr_multiplier.warmup_length = 0.25
optimizer.lr = 1e-4
