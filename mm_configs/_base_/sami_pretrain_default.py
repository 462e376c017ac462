# SAMI pretraining recipe (paper section 4.1), shared by sami_pretrain_vit-{ti,s,b}_in1k.py.
# ImageNet-1K train (ImageNet folder layout), 224-px RandomResizedCrop + horizontal flip + normalise,
# mask ratio 0.75, 8-block 512-d cross-attention decoder, SAM ViT-H teacher, MSE loss.
# AdamW lr 2.4e-3 at batch 4096 (scaled linearly with the real batch by auto_scale_lr), betas (0.9, 0.95),
# weight decay 0.05, 40 warm-up epochs then cosine, 400 epochs.
_base_ = ["./efficientsam_zoo_runtime.py"]

model = dict(
    type="SamiPretrainer",
    student=dict(arch="vit-ti", img_size=224),
    teacher=dict(type="hf_sam", pretrained="facebook/sam-vit-huge", input_size=1024, resize_mode="bilinear"),
    mask_ratio=0.75,
    decoder=dict(dim=512, depth=8, num_heads=16),
    target_resize="area",
    data_preprocessor=dict(type="ImgDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
)

train_pipeline = [
    dict(type="LoadImageRGB"),
    dict(type="RandomResizedCrop", size=224, scale=(0.2, 1.0), interpolation="bicubic"),
    dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    dict(type="PackImageInputs"),
]
train_dataloader = dict(
    batch_size=64,  # per GPU; 64 GPUs x 64 = 4096 as in the paper
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="ImageFolderDataset", data_root="data/imagenet/train", pipeline=train_pipeline),
)

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2.4e-3, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={"pos_embed": dict(decay_mult=0.0), "mask_token": dict(decay_mult=0.0)}),
)
auto_scale_lr = dict(base_batch_size=4096, enable=True)

max_epochs = 400
warmup_epochs = 40
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", T_max=max_epochs - warmup_epochs, eta_min=0.0, by_epoch=True,
         begin=warmup_epochs, end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs)
