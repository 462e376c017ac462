_base_ = ["../sami_pretrain_vit-ti_in1k.py"]
# Paper section 4.4 (cross-attention decoder): all tokens through the decoder as queries, MAE-style, instead of
# querying only the masked tokens with the encoder's outputs as anchors (the paper: 3 % lower top-1 for SAMI-Ti).
model = dict(decoder=dict(queries="all"))
