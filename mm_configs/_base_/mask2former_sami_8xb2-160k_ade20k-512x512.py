# Mask2Former with a SAMI ViT backbone on ADE20K 512x512 (paper Table 3 setting): the ViT's stride-16 map
# goes through the simple feature pyramid to strides 4, 8, 16, 32 (256 channels each) for the pixel decoder.
# AdamW lr 2e-4, weight decay 0.05, poly schedule over 160k iterations, batch 16 (8 GPUs x 2), backbone lr x 0.1.
_base_ = ["mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py"]
custom_imports = dict(imports=["mmdet.models", "efficientsam_zoo.integrations.openmmlab.mmseg"], allow_failed_imports=False)

crop_size = (512, 512)
model = dict(
    # ViTDet's form of the ViT (windows 14 except blocks 2/5/8/11, rel-pos, drop path 0.1) is SamiViT's default
    backbone=dict(_delete_=True, type="SamiViT", arch="vit-s", img_size=512,
                  init_cfg=dict(type="Pretrained", checkpoint="checkpoints/sami_vit-s.safetensors")),
    neck=dict(type="SamiSimpleFPN", in_channels=384, out_channels=256, num_outs=4),
    decode_head=dict(in_channels=[256, 256, 256, 256]),
)
optim_wrapper = dict(optimizer=dict(lr=2e-4, weight_decay=0.05))
# A fixed seed (the sampler's too): runs repeat, and --resume continues exactly where a run stopped.
randomness = dict(seed=0, diff_rank_seed=True)
