# EfficientTAM trained as SAM 2 trains (the sam2.1 training recipe, facebookresearch/sam2
# sam2/configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml, the only training config SAM 2 publishes; the
# EfficientTAM release has none): clips of 8 frames, up to 3 objects; the first frame prompted by its masks (p 0.5)
# or by a box / click, 1-2 initial conditioning frames, up to 2 frames with 7 correction clicks each; losses 20 focal +
# dice + L1 IoU + object-score BCE; AdamW lr 5e-6 (image encoder 3e-6, layer decay 0.9), weight decay 0.1, gradient
# norm clipped at 0.1, cosine to a tenth, one video per GPU on 8 GPUs. Set data_root and model.init_checkpoint (a SAMI
# export, an EfficientSAM checkpoint or an EfficientTAM release file); --amp trains in mixed precision on GPUs.
_base_ = ["./efficientsam_zoo_runtime.py"]

img_size = 1024
data_root = "data/sa-v/"
model = dict(type="EfficientTamTrainer", variant="efficienttam-ti", init_checkpoint=None,
             interaction=dict(prob_point=0.5, prob_box=0.5, num_init_cond_frames=2, num_frames_to_correct=2,
                              num_correction_points=7, prob_from_gt=0.1, corrected_frames_as_cond=True))
train_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True), collate_fn=dict(type="default_collate"),
    dataset=dict(type="VideoClipDataset", layout="sa-v", data_root=data_root, num_frames=8, max_objects=3,
                 img_size=img_size, flip_prob=0.5),
)
optim_wrapper = dict(type="OptimWrapper", constructor="SamiLayerDecayOptimizerConstructor",
                     optimizer=dict(type="AdamW", lr=5e-6, betas=(0.9, 0.999), weight_decay=0.1),
                     paramwise_cfg=dict(decay_rate=0.9, custom_keys={"vision_encoder.": dict(lr_mult=0.6)}),
                     clip_grad=dict(max_norm=0.1, norm_type=2))
max_epochs = 40
param_scheduler = [dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min_ratio=0.1, by_epoch=True, begin=0,
                        end=max_epochs, convert_to_iter_based=True)]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
custom_hooks = [dict(type="SaveVideoModelHook")]  # <work_dir>/model: the trained EfficientTamVideoModel
find_unused_parameters = True  # a clip prompted by masks leaves the prompt encoder's point embeddings idle
