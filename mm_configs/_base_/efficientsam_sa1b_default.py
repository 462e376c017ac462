# EfficientSAM finetuning on SA-1B (paper section 3 / Fig. 2 bottom): encoder + decoder trained together from a
# SAMI-pretrained encoder, SAM's simulated prompts (box or point, then error-region points), focal + dice (20:1)
# + IoU MSE on the best of the multimask outputs; AdamW (0.9, 0.999), lr 4e-4 at batch 128 (scaled by
# auto_scale_lr), linear decay to 0, weight decay 0.1, 5 epochs, no augmentation, 1024-px input.
_base_ = ["./efficientsam_zoo_runtime.py"]

model = dict(type="EfficientSamFinetuner", variant="efficientsam-ti",
             init_checkpoint="checkpoints/sami_vit-ti.safetensors", iterative_rounds=2, box_prob=0.5)
train_dataloader = dict(
    batch_size=2,  # per GPU; 64 GPUs x 2 = 128
    num_workers=8, persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(type="SA1BDataset", paths=["data/sa1b/sa_*.tar"], img_size=1024, max_masks=64),
)
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=4e-4, betas=(0.9, 0.999), weight_decay=0.1))
auto_scale_lr = dict(base_batch_size=128, enable=True)
max_epochs = 5
param_scheduler = [dict(type="LinearLR", start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0, end=max_epochs,
                        convert_to_iter_based=True)]
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=1))
