"""EfficientTAM's training forward (integrations.hf.efficienttam_training): the memory bank is in the graph, the
training path predicts what SAM 2's predictor API predicts, and the three starting points load what they should."""
import pytest
import torch
from conftest import randomize_, tracking_efficienttam

from efficientsam_zoo import build_efficient_sam
from efficientsam_zoo.checkpoints import save_official_checkpoint
from efficientsam_zoo.data.synthetic import make_moving_shapes
from efficientsam_zoo.integrations.hf import EfficientTamVideoModel, efficienttam_config_for
from efficientsam_zoo.integrations.hf.efficienttam_predictor import EfficientTamVideoPredictor
from efficientsam_zoo.integrations.hf.efficienttam_training import (InteractionSettings, clip_features, clip_losses,
                                                                    init_from_checkpoint, sam2_memory_init_,
                                                                    track_clip)
from efficientsam_zoo.modeling.efficient_sam import IMAGENET_MEAN, IMAGENET_STD

MASKS_ON_FRAME_0 = InteractionSettings(prob_point=0.0, num_init_cond_frames=1)


def _clip(size=64, frames=4, seed=0):
    video, masks = make_moving_shapes(seed, frames, size, size)
    x = torch.tensor(video).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    gt = torch.tensor(masks)
    return video, x, gt[:, gt[0].flatten(1).any(1)]


def test_later_frames_learn_through_the_memory():
    """A loss on frame 2 alone sends gradients into the memory encoder (frame 0's and 1's memories feed frame 2's
    prediction); a loss on the clicked frame 0 alone does not (it is decoded without memory): the control."""
    model = tracking_efficienttam(64).train()
    _, x, gt = _clip()
    clicks = InteractionSettings(prob_point=1.0, prob_box=0.0, num_init_cond_frames=1, num_frames_to_correct=1,
                                 num_correction_points=0)
    steps = track_clip(model, clip_features(model, x), gt, torch.Generator().manual_seed(0), clicks)

    def memory_grad(frame):
        model.zero_grad()
        logits = steps[frame][-1][0]
        (logits.sum() + steps[frame][-1][2].sum()).backward(retain_graph=True)
        return sum(float(p.grad.abs().sum()) for p in model.memory_encoder.parameters() if p.grad is not None)

    assert memory_grad(2) > 0
    assert memory_grad(0) == 0


def test_training_path_predicts_what_the_predictor_api_predicts():
    """The unrolled training forward (eval mode, masks on frame 0) and SAM 2's predictor API on the same frames give
    the same mask logits on every frame (within 1e-5; the predictor resizes to the video's size, which is the model's
    here). The control: the training path on the frames in reverse order is far from it (so is any path that pairs a
    frame's features with another frame's output). Swapping the objects' first masks would not do as a control: a
    random model's memory barely moves its masks (3.5e-4 here), which is what training has to change."""
    model = tracking_efficienttam(64).eval()
    video, x, gt = _clip()
    assert gt.shape[1] >= 2

    def unrolled(frames):
        with torch.no_grad():
            steps = track_clip(model, clip_features(model, frames), gt, torch.Generator().manual_seed(0),
                               MASKS_ON_FRAME_0)
        out = []
        for candidates, iou, _ in (s[-1] for s in steps):
            out.append(candidates[torch.arange(len(iou)), iou.argmax(1)])
        return out

    mine, reversed_ = unrolled(x), unrolled(x.flip(0))
    predictor = EfficientTamVideoPredictor(model)
    state = predictor.init_state(list(video))
    for k in range(gt.shape[1]):
        predictor.add_new_mask(state, 0, k + 1, gt[0, k].numpy())
    compared = 0
    for t, obj_ids, logits in predictor.propagate_in_video(state):
        assert obj_ids == list(range(1, gt.shape[1] + 1))
        if t == 0:
            continue
        assert float((mine[t] - logits[:, 0]).abs().max()) <= 1e-5, f"frame {t}"
        assert float((reversed_[t] - logits[:, 0]).abs().max()) > 100 * 1e-5
        compared += 1
    assert compared == 3


def _memory_spread(model, x, gt):
    """How far the objects' memory-conditioned features on frame 1 lie apart, relative to their size."""
    seen = []
    original = model._prepare_memory_conditioned_features

    def spy(bank, t, j, is_init, *args):
        out = original(bank, t, j, is_init, *args)
        if t == 1:
            seen.append(out)
        return out

    model._prepare_memory_conditioned_features = spy
    with torch.no_grad():
        track_clip(model, clip_features(model, x), gt, torch.Generator().manual_seed(0), MASKS_ON_FRAME_0)
    return float((seen[0] - seen[1]).norm() / seen[0].norm())


def test_sam2_memory_init_lets_the_memory_reach_the_features():
    """From SAM 2's start for the memory parts (PyTorch's layer defaults), two objects' features on a tracked frame
    differ by > 5e-3 of their norm (measured 1.1e-2): each object's memory reaches them. From transformers' start
    (normal, std 0.02), the control, by < 2e-3 (measured 6e-4): the memory is drowned, and training from there never
    learns to track (README). ``readout_gain=10`` (the tiny config's start) moves them more than 3x further."""
    _, x, gt = _clip()
    torch.manual_seed(0)
    model = EfficientTamVideoModel(efficienttam_config_for("efficienttam-ti", image_size=64)).eval()
    drowned = _memory_spread(model, x, gt)
    assert drowned < 2e-3
    torch.manual_seed(0)
    model = EfficientTamVideoModel(efficienttam_config_for("efficienttam-ti", image_size=64)).eval()
    sam2_memory_init_(model)
    spread = _memory_spread(model, x, gt)
    assert spread > 5e-3 and spread > 5 * drowned
    torch.manual_seed(0)  # the tiny config's start: the readout x10 moves the features more again
    model = EfficientTamVideoModel(efficienttam_config_for("efficienttam-ti", image_size=64)).eval()
    sam2_memory_init_(model, readout_gain=10.0)
    assert _memory_spread(model, x, gt) > 3 * spread


def test_clip_losses_train_a_batch_and_need_an_object():
    model = tracking_efficienttam(64).train()
    _, x, gt = _clip()
    valid = torch.ones(1, gt.shape[1], dtype=torch.bool)
    out = clip_losses(model, x[None], gt[None], valid, [torch.Generator().manual_seed(1)])
    assert set(out) == {"loss", "loss_mask", "loss_dice", "loss_iou", "loss_class"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.memory_attention.layers[0].cross_attn_image.q_proj.weight.grad is not None
    with pytest.raises(ValueError, match="has no object"):
        clip_losses(model, x[None], gt[None], torch.zeros_like(valid), [torch.Generator()])


def _tiny_config():
    return efficienttam_config_for("efficienttam-ti", image_size=64,
                                   vision_config=dict(num_hidden_layers=2, global_attn_indexes=[0, 1]),
                                   memory_attention_num_layers=1)


def test_init_from_an_efficientsam_checkpoint_copies_encoder_prompts_and_decoder(tmp_path):
    sam = randomize_(build_efficient_sam("efficientsam-ti", img_size=64, depth=2), seed=3)
    path = str(tmp_path / "sam.pt")
    save_official_checkpoint(sam, path)
    model = EfficientTamVideoModel(_tiny_config())
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    assert init_from_checkpoint(model, path) == "efficientsam"
    ours, theirs = model.state_dict(), sam.state_dict()
    pairs = {  # written out by hand from the two modules' definitions
        "vision_encoder.trunk.blocks.1.attn.qkv.weight": "image_encoder.blocks.1.attn.qkv.weight",
        "vision_encoder.trunk.neck.2.weight": "image_encoder.neck.2.weight",
        "prompt_encoder.not_a_point_embed.weight": "prompt_encoder.invalid_points.weight",
        "mask_decoder.transformer.layers.0.mlp.proj_in.weight": "mask_decoder.transformer.layers.0.mlp.layers.0.0.weight",
        "mask_decoder.transformer.layers.1.cross_attn_image_to_token.o_proj.bias":
            "mask_decoder.transformer.layers.1.cross_attn_image_to_token.out_proj.bias",
        "mask_decoder.upscale_conv2.weight": "mask_decoder.final_output_upscaling_layers.1.0.weight",
        "mask_decoder.output_hypernetworks_mlps.2.layers.0.weight": "mask_decoder.output_hypernetworks_mlps.2.layers.1.0.weight",
        "mask_decoder.iou_prediction_head.proj_out.bias": "mask_decoder.iou_prediction_head.fc.bias",
        "shared_image_embedding.positional_embedding": "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
    }
    for mine, release in pairs.items():
        assert torch.equal(ours[mine], theirs[release]), mine
    assert torch.equal(ours["prompt_encoder.point_embed.weight"][1], theirs["prompt_encoder.point_embeddings.weight"][0])
    assert torch.equal(ours["prompt_encoder.point_embed.weight"][0], fresh["prompt_encoder.point_embed.weight"][0])
    for fresh_part in ("memory_attention.layers.0.self_attn.q_proj.weight", "mask_decoder.obj_score_token.weight"):
        assert torch.equal(ours[fresh_part], fresh[fresh_part]), fresh_part  # the parts EfficientSAM has no
    wrong = randomize_(build_efficient_sam("efficientsam-s", img_size=64, depth=2), seed=3)
    save_official_checkpoint(wrong, str(tmp_path / "s.pt"))
    with pytest.raises(Exception, match="wrong shape|does not fit"):
        init_from_checkpoint(EfficientTamVideoModel(_tiny_config()), str(tmp_path / "s.pt"))


def test_init_from_an_efficienttam_directory_is_exact(tmp_path):
    trained = randomize_(EfficientTamVideoModel(_tiny_config()), seed=5)
    trained.save_pretrained(str(tmp_path / "etam"))
    model = EfficientTamVideoModel(_tiny_config())
    assert init_from_checkpoint(model, str(tmp_path / "etam")) == "efficienttam"
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in model.state_dict().items())


def test_bad_starting_points_are_named(tmp_path):
    model = EfficientTamVideoModel(_tiny_config())
    torch.save({"state_dict": {"model.x": torch.zeros(1)}, "meta": {"iter": 8}}, tmp_path / "iter_8.pth")
    with pytest.raises(Exception, match="mmengine training checkpoint.*<work_dir>/model"):
        init_from_checkpoint(model, str(tmp_path / "iter_8.pth"))
    sam = build_efficient_sam("efficientsam-ti", img_size=64, depth=2)
    state = {**sam.state_dict(), "prompt_encoder.extra_embeddings.weight": torch.zeros(1, 256)}
    torch.save({"model": state}, tmp_path / "odd.pt")
    with pytest.raises(Exception, match="prompt_encoder.extra_embeddings.weight"):
        init_from_checkpoint(model, str(tmp_path / "odd.pt"))


def test_an_efficientsam_decoder_keeps_computing_what_it_computed(tmp_path):
    """With ``efficientsam_decoder`` the copied hypernetwork MLP, upscaling and IoU head compute EfficientSAM's own
    outputs on the same input (GELU, GroupNorm, no sigmoid on the IoU); SAM 2's decoder (ReLU, LayerNorm, sigmoid) on
    the same weights does not: the control. The fresh object-score head says "present" for anything."""
    sam = randomize_(build_efficient_sam("efficientsam-ti", img_size=64, depth=2), seed=4).eval()
    path = str(tmp_path / "sam.pt")
    save_official_checkpoint(sam, path)
    g = torch.Generator().manual_seed(0)
    tokens, image = torch.randn(5, 256, generator=g), torch.randn(1, 256, 4, 4, generator=g)
    theirs_mlp = sam.mask_decoder.output_hypernetworks_mlps[1](tokens)
    theirs_up = sam.mask_decoder.final_output_upscaling_layers[0](image)
    theirs_iou = sam.mask_decoder.iou_prediction_head(tokens)
    gaps = {}
    for compatible in (True, False):
        model = EfficientTamVideoModel(efficienttam_config_for(
            "efficienttam-ti", image_size=64, vision_config=dict(num_hidden_layers=2, global_attn_indexes=[0, 1]),
            memory_attention_num_layers=1, efficientsam_decoder=compatible)).eval()
        init_from_checkpoint(model, path)
        dec = model.mask_decoder
        with torch.no_grad():
            ours_up = dec.activation(dec.upscale_layer_norm(dec.upscale_conv1(image)))
            gaps[compatible] = [float((dec.output_hypernetworks_mlps[1](tokens) - theirs_mlp).abs().max()),
                                float((ours_up - theirs_up).abs().max()),
                                float((dec.iou_prediction_head(tokens) - theirs_iou).abs().max())]
            scores = dec.pred_obj_score_head(tokens)
        assert torch.all(scores == 10.0)
    assert max(gaps[True]) <= 1e-5 and min(gaps[False]) > 1e-2, gaps
