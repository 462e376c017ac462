_base_ = ["./_base_/mae_pretrain_default.py"]
# MAE-B on ImageNet-1K, pixel target, 1600 epochs (the paper's MAE-B baseline).
model = dict(student=dict(arch="vit-b", img_size=224))
