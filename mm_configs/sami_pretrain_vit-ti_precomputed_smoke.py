_base_ = ["./sami_pretrain_vit-ti_tiny-shapes.py"]
# SAMI from precomputed teacher targets (python -m efficientsam_zoo.tools.precompute_teacher
# mm_configs/sami_pretrain_vit-ti_tiny-shapes.py --data-root IMAGES --out FEATURES): fixed crops, no flips.
# Point train_dataloader.dataset.feature_dir at FEATURES (--cfg-options).
model = dict(teacher=dict(_delete_=True, type="precomputed", out_channels=32))
train_dataloader = dict(dataset=dict(
    _delete_=True, type="PrecomputedFeatureDataset", feature_dir="data/sami_targets",
    pipeline=[dict(type="LoadImageRGB"), dict(type="ResizeCenterCrop", size={{_base_.img_size}}, crop_pct=0.875),
              dict(type="PackImageInputs")]))
