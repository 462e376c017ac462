# ViTDet Mask R-CNN with a SAMI backbone on COCO, 100 epochs (paper section 4.1 / Table 2), shared by
# COCO/mask_rcnn_vitdet_sami_{ti,s,b}_100ep.py (which set the backbone size and its checkpoint):
# LSJ 1024, AdamW lr 2e-4 betas (0.9, 0.999) weight decay 0.1, layer-wise lr decay 0.7, 10-epoch linear warm-up
# then cosine to 0, batch 64, AMP. train.init_checkpoint: a SAMI export (efficientsam-zoo export-backbone), an
# official EfficientSAM checkpoint or an HF SamiViTModel directory, loaded by efficientsam_zoo's loader.
from functools import partial

from detectron2 import model_zoo
from detectron2.config import LazyCall as L
from detectron2.solver import WarmupParamScheduler
from fvcore.common.param_scheduler import CosineParamScheduler

from efficientsam_zoo.integrations.detectron2 import SamiViTNet, get_sami_vit_lr_decay_rate

from .coco_loader_lsj import dataloader  # noqa: F401

model = model_zoo.get_config("common/models/mask_rcnn_vitdet.py").model
# ViTDet's form of the ViT (windows 14 except blocks 2/5/8/11, rel-pos, drop path 0.1) is SamiViTNet's default
model.backbone.net = L(SamiViTNet)(arch="vit-s", img_size=1024, out_feature="last_feat")

train = model_zoo.get_config("common/train.py").train
train.amp.enabled = True
train.ddp.fp16_compression = True
train.init_checkpoint = ""  # set by each size's config
train.max_iter = 184375  # 100 epochs of COCO train2017 at batch 64
train.eval_period = 5000
train.checkpointer.period = 5000

lr_multiplier = L(WarmupParamScheduler)(
    scheduler=L(CosineParamScheduler)(start_value=1.0, end_value=0.0),
    warmup_length=0.1,  # 10 of 100 epochs
    warmup_factor=0.001,
)

optimizer = model_zoo.get_config("common/optim.py").AdamW
optimizer.lr = 2e-4
optimizer.betas = (0.9, 0.999)
optimizer.weight_decay = 0.1
optimizer.params.lr_factor_func = partial(get_sami_vit_lr_decay_rate, num_layers=12, lr_decay_rate=0.7)
optimizer.params.overrides = {"pos_embed": {"weight_decay": 0.0}, "rel_pos_h": {"weight_decay": 0.0},
                              "rel_pos_w": {"weight_decay": 0.0}}
