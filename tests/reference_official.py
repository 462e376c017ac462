"""An independent re-computation of the EfficientSAM release's arithmetic, for comparisons in tests.

It follows the release step by step, deliberately the slow way: the image embedding tiled once per
query, attention written as matmul-softmax-matmul, label embeddings added by boolean-index assignment,
one query at a time. It reads weights from a state dict, so it shares no code with the package.
"""
import math

import torch
import torch.nn.functional as F


def layer_norm(x, sd, p, eps=1e-5):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps)


def layer_norm_2d(x, sd, p, eps=1e-6):
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + eps)
    return sd[p + ".weight"][:, None, None] * x + sd[p + ".bias"][:, None, None]


def linear(x, sd, p):
    return x @ sd[p + ".weight"].t() + sd[p + ".bias"]


def encoder(img, sd, num_heads, depth, patch=16):
    """Normalised image [B,3,S,S] -> neck output."""
    x = F.conv2d(img, sd["image_encoder.patch_embed.proj.weight"], sd["image_encoder.patch_embed.proj.bias"], stride=patch)
    b, c, h, w = x.shape
    pos = sd["image_encoder.pos_embed"][:, 1:]
    side = int(math.sqrt(pos.shape[1]))
    pos = pos.reshape(1, side, side, c).permute(0, 3, 1, 2)
    if side != h:
        pos = F.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False)
    x = (x + pos).flatten(2).transpose(1, 2)  # [B, N, C]
    hd = c // num_heads
    for i in range(depth):
        p = f"image_encoder.blocks.{i}"
        y = layer_norm(x, sd, p + ".norm1", 1e-6)
        qkv = linear(y, sd, p + ".attn.qkv").reshape(b, -1, 3, num_heads, hd).permute(2, 0, 3, 1, 4)
        attn = (qkv[0] @ qkv[1].transpose(-2, -1)) * hd ** -0.5
        y = (attn.softmax(-1) @ qkv[2]).transpose(1, 2).reshape(b, -1, c)
        x = x + linear(y, sd, p + ".attn.proj")
        y = layer_norm(x, sd, p + ".norm2", 1e-6)
        x = x + linear(F.gelu(linear(y, sd, p + ".mlp.fc1")), sd, p + ".mlp.fc2")
    x = x.transpose(1, 2).reshape(b, c, h, w)
    x = F.conv2d(x, sd["image_encoder.neck.0.weight"])
    x = layer_norm_2d(x, sd, "image_encoder.neck.1")
    x = F.conv2d(x, sd["image_encoder.neck.2.weight"], padding=1)
    return layer_norm_2d(x, sd, "image_encoder.neck.3")


def pe_encode(coords01, gauss):
    c = 2 * coords01 - 1
    c = 2 * math.pi * (c @ gauss)
    return torch.cat([torch.sin(c), torch.cos(c)], dim=-1)


def prompt_embeddings(points, labels, sd, img_size):
    """points [N,P,2] in the model frame, labels [N,P] -> [N,P,C] (boolean-index assignment, like the release)."""
    gauss = sd["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    pts = points + 0.5
    pts = pts.clone()
    pts[..., 0] = pts[..., 0] / img_size
    pts[..., 1] = pts[..., 1] / img_size
    emb = pe_encode(pts, gauss)
    emb[labels == -1] += sd["prompt_encoder.invalid_points.weight"][0]
    emb[labels == 1] += sd["prompt_encoder.point_embeddings.weight"][0]
    emb[labels == 2] += sd["prompt_encoder.bbox_top_left_embeddings.weight"][0]
    emb[labels == 3] += sd["prompt_encoder.bbox_bottom_right_embeddings.weight"][0]
    return emb


def dense_pe(sd, grid):
    gauss = sd["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"]
    ones = torch.ones(grid, grid)
    y = (ones.cumsum(0) - 0.5) / grid
    x = (ones.cumsum(1) - 0.5) / grid
    return pe_encode(torch.stack([x, y], -1), gauss).permute(2, 0, 1)[None]


def attention(q, k, v, sd, p, heads):
    q, k, v = linear(q, sd, p + ".q_proj"), linear(k, sd, p + ".k_proj"), linear(v, sd, p + ".v_proj")
    b, nq, ci = q.shape
    split = lambda t: t.reshape(b, t.shape[1], heads, ci // heads).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    a = (q @ k.permute(0, 1, 3, 2)) / math.sqrt(ci // heads)
    out = (a.softmax(-1) @ v).transpose(1, 2).reshape(b, nq, ci)
    return linear(out, sd, p + ".out_proj")


def mlp(x, sd, p, n_layers):
    for i in range(n_layers):
        x = F.gelu(linear(x, sd, f"{p}.layers.{i}.0"))
    return linear(x, sd, p + ".fc")


def decoder(emb_tiled, pe, tokens, sd, heads, depth, iou_layers, num_mask_tokens, up_dims):
    """One image embedding per query [BQ,C,h,w] -> masks [BQ, 4 tokens, 4h, 4w], iou [BQ, 4]."""
    bq, c, h, w = emb_tiled.shape
    keys = emb_tiled.flatten(2).permute(0, 2, 1)
    key_pe = pe.flatten(2).permute(0, 2, 1)
    queries, qpe = tokens, tokens
    T = "mask_decoder.transformer"
    for i in range(depth):
        p = f"{T}.layers.{i}"
        if i > 0:
            queries = queries + qpe
        queries = layer_norm(queries + attention(queries, queries, queries, sd, p + ".self_attn", heads), sd, p + ".norm1")
        queries = layer_norm(queries + attention(queries + qpe, keys + key_pe, keys, sd, p + ".cross_attn_token_to_image", heads),
                             sd, p + ".norm2")
        queries = layer_norm(queries + mlp(queries, sd, p + ".mlp", 1), sd, p + ".norm3")
        keys = layer_norm(keys + attention(keys + key_pe, queries + qpe, queries, sd, p + ".cross_attn_image_to_token", heads),
                          sd, p + ".norm4")
    queries = layer_norm(queries + attention(queries + qpe, keys + key_pe, keys, sd, T + ".final_attn_token_to_image", heads),
                         sd, T + ".norm_final_attn")
    x = keys.transpose(1, 2).reshape(bq, c, h, w)
    for i, _ in enumerate(up_dims):
        p = f"mask_decoder.final_output_upscaling_layers.{i}"
        x = F.conv_transpose2d(x, sd[p + ".0.weight"], sd[p + ".0.bias"], stride=2)
        if i < len(up_dims) - 1:
            x = F.group_norm(x, 1, sd[p + ".1.weight"], sd[p + ".1.bias"])
        x = F.gelu(x)
    hyper = torch.stack([mlp(queries[:, 1 + i], sd, f"mask_decoder.output_hypernetworks_mlps.{i}", 2)
                         for i in range(num_mask_tokens)], 1)
    n, uc, uh, uw = x.shape
    masks = (hyper @ x.reshape(n, uc, uh * uw)).reshape(n, -1, uh, uw)
    iou = mlp(queries[:, 0], sd, "mask_decoder.iou_prediction_head", iou_layers)
    return masks, iou


def official_forward(sd, spec, images, points, labels):
    """The release's ``forward(images, points, labels)`` (multimask, scaled to the input size)."""
    b, _, H, W = images.shape
    S = spec.img_size
    x = F.interpolate(images, (S, S), mode="bilinear") if (H, W) != (S, S) else images
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    emb = encoder((x - mean) / std, sd, spec.num_heads, spec.depth, spec.patch_size)
    _, nq, n, _ = points.shape
    pts = torch.stack([torch.where(points[..., 0] >= 0, points[..., 0] * S / W, -1.0),
                       torch.where(points[..., 1] >= 0, points[..., 1] * S / H, -1.0)], -1)
    m = spec.decoder_max_num_input_points
    if n > m:
        pts, labels = pts[:, :, :m], labels[:, :, :m]
    elif n < m:
        pts = F.pad(pts, (0, 0, 0, m - n), value=-1.0)
        labels = F.pad(labels, (0, m - n), value=-1)
    sparse = prompt_embeddings(pts.reshape(b * nq, m, 2), labels.reshape(b * nq, m), sd, S)
    ntok = spec.num_multimask_outputs + 1
    out_tokens = torch.cat([sd["mask_decoder.iou_token.weight"], sd["mask_decoder.mask_tokens.weight"]], 0)
    tokens = torch.cat([out_tokens[None].expand(b * nq, -1, -1), sparse], 1)
    tiled = torch.tile(emb[:, None], [1, nq, 1, 1, 1]).reshape(b * nq, *emb.shape[1:])
    pe = dense_pe(sd, S // spec.patch_size)
    masks, iou = decoder(tiled, pe, tokens, sd, spec.decoder_num_heads, spec.decoder_depth,
                         spec.iou_head_depth - 1, ntok, spec.upscaling_layer_dims)
    masks, iou = masks[:, 1:], iou[:, 1:]
    masks = F.interpolate(masks, (H, W), mode="bicubic")
    return masks.reshape(b, nq, -1, H, W), iou.reshape(b, nq, -1)
