_base_ = ["./sami_pretrain_vit-ti_in1k.py"]
# SAMI that learns in about a minute on a CPU: a 6-block ViT-Ti student on 128-px crops of generated scenes, a tiny
# random SamVisionModel as teacher (no SAM weights here: it shows the pipeline learns, not SAM's knowledge), a small
# decoder. 1000 iterations: fewer do not get the held-out loss below that of predicting the teacher's mean map (the
# quickstart reports both). Point train_dataloader.dataset.data_root at an image folder (--cfg-options); the quickstart and the tests
# generate one (efficientsam_zoo.data.synthetic).
img_size = 128
model = dict(
    student=dict(arch="vit-ti", img_size=img_size, depth=6),
    teacher=dict(_delete_=True, type="hf_sam", seed=0,
                 config=dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                             image_size=64, patch_size=16, window_size=2, global_attn_indexes=[1], mlp_dim=64)),
    decoder=dict(dim=128, depth=2, num_heads=4),
)
train_pipeline = [
    dict(type="LoadImageRGB"),
    dict(type="RandomResizedCrop", size=img_size, scale=(0.5, 1.0), interpolation="bicubic"),
    dict(type="RandomFlip", prob=0.5, direction="horizontal"),
    dict(type="PackImageInputs"),
]
train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                        sampler=dict(_delete_=True, type="InfiniteSampler", shuffle=True),
                        dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=3e-3, fused=True))
auto_scale_lr = dict(enable=False)
max_iters = 1000
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=10),
                   dict(type="CosineAnnealingLR", T_max=max_iters - 10, eta_min=0.0, by_epoch=False, begin=10,
                        end=max_iters)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
