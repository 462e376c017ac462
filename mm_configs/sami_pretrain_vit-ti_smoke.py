_base_ = ["./sami_pretrain_vit-ti_in1k.py"]
# A few CPU iterations on generated images: ViT-Ti student, tiny random SamVisionModel teacher, small decoder.
# Point train_dataloader.dataset.data_root at an image folder (--cfg-options).
model = dict(
    teacher=dict(_delete_=True, type="hf_sam", seed=0,
                 config=dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                             image_size=64, patch_size=16, window_size=2, global_attn_indexes=[1], mlp_dim=64)),
    decoder=dict(dim=128, depth=2, num_heads=4),
)
train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
                        sampler=dict(_delete_=True, type="InfiniteSampler", shuffle=True))
optim_wrapper = dict(optimizer=dict(lr=1e-3))
auto_scale_lr = dict(enable=False)
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=10)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=50)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(by_epoch=False, interval=25, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
