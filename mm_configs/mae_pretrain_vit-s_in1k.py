_base_ = ["./_base_/mae_pretrain_default.py"]
# MAE-S on ImageNet-1K, pixel target, 1600 epochs (the paper's MAE-S baseline).
model = dict(student=dict(arch="vit-s", img_size=224))
