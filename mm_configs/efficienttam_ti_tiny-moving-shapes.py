# EfficientTAM on a CPU, for the tests and the quickstart's "track" stage: generated moving-shapes videos in the DAVIS
# layout (efficientsam_zoo.data.video.make_moving_shapes_davis) at 128 px, clips of 4 frames with up to 2 objects, a
# 6-block ViT-Ti with global attention (start from the quickstart's EfficientSAM: model.init_checkpoint=
# QUICKSTART_OUT/model; its encoder is trained too, at the base's 0.6 lr multiplier and layer decay), one
# memory-attention layer; AdamW 1e-3, 400 iterations (about 85 s here). Two departures from SAM 2's recipe (README
# "Train EfficientTAM"): the first frame is always prompted by its masks (prob_point=0.0: the semi-supervised setting
# the quickstart scores; so no clicks and no correction clicks), and the memory attention's readout starts 10x SAM 2's
# (memory_readout_gain: at 1x it is ~1% of these LayerNorm-ed image features). Set
# train_dataloader.dataset.data_root.
_base_ = ["./_base_/efficienttam_default.py"]

img_size = 128
model = dict(
    config=dict(image_size=img_size, vision_config=dict(num_hidden_layers=6, global_attn_indexes=[0, 1, 2, 3, 4, 5]),
                memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=512,
                memory_fuser_num_layers=1, memory_fuser_intermediate_dim=256),
    memory_readout_gain=10.0,
    interaction=dict(prob_point=0.0, num_init_cond_frames=1))
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        sampler=dict(_delete_=True, type="InfiniteSampler", shuffle=True),
                        dataset=dict(layout="davis", data_root="data/moving-shapes/", num_frames=4, max_objects=2,
                                     img_size=img_size))
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.01), clip_grad=dict(max_norm=1.0))
max_iters = 400
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=10),
                   dict(type="CosineAnnealingLR", T_max=max_iters - 10, eta_min_ratio=0.1, by_epoch=False, begin=10,
                        end=max_iters)]
train_cfg = dict(_delete_=True, type="IterBasedTrainLoop", max_iters=max_iters)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(by_epoch=False, interval=50, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend="gloo"))
