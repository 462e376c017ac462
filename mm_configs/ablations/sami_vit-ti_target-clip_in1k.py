_base_ = ["../sami_pretrain_vit-ti_in1k.py"]
# Paper section 4.4 (reconstruction target): SAMI-Ti reconstructing CLIP image features (transformers'
# CLIPVisionModel; patch tokens at 224 px, 14x14x768, resized to the student's grid like SAM's map).
model = dict(teacher=dict(_delete_=True, type="hf_clip", pretrained="openai/clip-vit-base-patch16", input_size=224))
