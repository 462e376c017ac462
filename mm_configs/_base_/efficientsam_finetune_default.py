# EfficientSAM finetuned on your own instance masks (efficientsam-zoo finetune builds on these configs): SAM's
# simulated prompts -- a box or a point, 3 correction clicks from the error region (negative clicks for false
# positives) and two rounds with the previous mask alone (one among the clicks, one last) -- with negative clicks and
# mask prompts switched on (for every prompt the checkpoint takes, the model computes what it computes until it learns
# them). The recipe (full / decoder / lora) comes from mm_configs/recipes/.
_base_ = ["./efficientsam_zoo_runtime.py"]

img_size = 1024
data_root = "data/mine/"
model = dict(type="EfficientSamFinetuner", variant="efficientsam-ti", init_checkpoint="weights/efficient_sam_vitt.pt",
             overrides=dict(negative_points=True, mask_prompts=True), iterative_rounds=3, mask_only_rounds=2,
             box_prob=0.5)
train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True), collate_fn=dict(type="default_collate"),
    dataset=dict(type="InstanceDataset", data_root=data_root, img_size=img_size, max_masks=16),
)
max_epochs = 10
param_scheduler = [dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=50),
                   dict(type="CosineAnnealingLR", T_max=max_epochs, eta_min_ratio=0.01, by_epoch=True, begin=0,
                        end=max_epochs, convert_to_iter_based=True)]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=1, max_keep_ckpts=2))
find_unused_parameters = True  # the mask-prompt layers idle in rounds without a mask
