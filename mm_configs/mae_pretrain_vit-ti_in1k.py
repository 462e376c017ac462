_base_ = ["./_base_/mae_pretrain_default.py"]
# MAE-Ti on ImageNet-1K, pixel target, 1600 epochs (the paper's MAE-Ti baseline).
model = dict(student=dict(arch="vit-ti", img_size=224))
