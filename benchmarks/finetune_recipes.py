"""The finetuning recipes side by side: trainable parameters, peak memory and seconds per iteration.

    python benchmarks/finetune_recipes.py [--models efficientsam-ti efficientsam-s] [--recipes full decoder lora]
                                          [--batch 1] [--masks 16] [--repeats 3] [--json out.json]

One iteration is what ``efficientsam-zoo finetune`` runs per batch: the shipped default config's prompt simulation
(a box or a point, 3 correction clicks, 2 mask-only rounds) on ``--masks`` masks per image at 1024 px, SAM's losses,
backward and the recipe's optimiser step (built by mmengine from ``mm_configs/recipes/``). The decoder recipe is timed
as its epochs after the first run: the image embeddings read from its cache. Random weights; medians of
``--repeats`` iterations after one warm-up. Peak memory: CUDA's max allocated, or on CPU the growth of resident memory
during one extra, untimed iteration.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import measure  # noqa: E402
from efficientsam_zoo.registry import EFFICIENT_SAM_NAMES  # noqa: E402

RECIPES = ("full", "decoder", "lora")


def _finetuner(model: str, recipe: str, cache: str):
    """The Runner's model and optimiser wrapper, built from the default config with ``recipe``'s settings."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import efficientsam_zoo.integrations.openmmlab  # noqa: F401  (registers the finetuner, the optimiser constructor)
    from efficientsam_zoo.integrations.openmmlab.models import EfficientSamFinetuner
    from efficientsam_zoo.tools.configs import resolve_config

    init_default_scope("efficientsam_zoo")
    cfg = Config.fromfile(resolve_config(f"recipes/efficientsam_finetune_{recipe}"))
    kwargs = {k: v for k, v in cfg.model.items() if k not in ("type", "variant", "init_checkpoint")}
    kwargs["embedding_cache"] = cache if recipe == "decoder" else None
    sam = EfficientSamFinetuner(model, **kwargs)
    return sam, build_optim_wrapper(sam, cfg.optim_wrapper), cfg


def bench(model: str, recipe: str, batch: int, masks: int, device: str, repeats: int) -> dict:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as cache:
        finetuner, optim, cfg = _finetuner(model, recipe, cache)
        finetuner.to(device).train()
        size = finetuner.sam.img_size
        image = torch.rand(batch, 3, size, size, device=device)
        yy, xx = torch.meshgrid(torch.arange(size // 4), torch.arange(size // 4), indexing="ij")
        gts, boxes = [], []
        for k in range(masks):  # squares on a grid: every mask non-empty, with its box
            x0, y0 = 8 + 48 * (k % 4) + 4 * k, 8 + 48 * (k // 4)
            gts.append((xx >= x0) & (xx < x0 + 40) & (yy >= y0) & (yy < y0 + 40))
            boxes.append(torch.tensor([x0, y0, x0 + 40, y0 + 40], dtype=torch.float32) * 4)
        data = dict(image=image, masks=torch.stack(gts)[None].expand(batch, -1, -1, -1).to(device),
                    boxes=torch.stack(boxes)[None].expand(batch, -1, -1).to(device),
                    valid=torch.ones(batch, masks, dtype=torch.bool, device=device),
                    index=torch.arange(batch))

        def step():
            optim.update_params(finetuner(**data)["loss"])

        step()  # the warm-up; for the decoder recipe it also fills the embedding cache
        median_s, peak = measure(step, device, 0, repeats)
    trainable = sum(p.numel() for p in finetuner.parameters() if p.requires_grad)
    total = sum(p.numel() for p in finetuner.parameters())
    return dict(model=model, recipe=recipe, batch=batch, masks=masks, device=device, trainable_params=trainable,
                total_params=total, s_per_iter=median_s, peak_mem_mb=peak, repeats=repeats,
                rounds=1 + cfg.model.iterative_rounds + cfg.model.mask_only_rounds)


def main(argv=None) -> list:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(EFFICIENT_SAM_NAMES), choices=EFFICIENT_SAM_NAMES)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=RECIPES)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--masks", type=int, default=16, help="masks per image (the default config's max_masks)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if not 1 <= args.masks <= 16:
        ap.error("--masks must be 1..16 (the squares the benchmark draws)")
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.machine()
    print(f"# {args.device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, "
          f"batch {args.batch}, {args.masks} masks per image, 1024 px, median of {args.repeats}")
    rows = [bench(m, r, args.batch, args.masks, args.device, args.repeats) for m in args.models for r in args.recipes]
    print("| model | recipe | trainable params | of all | s / iteration | peak MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_mem_mb']:.0f}" if r["peak_mem_mb"] is not None else "-"
        print(f"| {r['model']} | {r['recipe']} | {r['trainable_params'] / 1e6:.2f} M | "
              f"{100 * r['trainable_params'] / r['total_params']:.1f} % | {r['s_per_iter']:.2f} | {peak} |")
    if args.json:
        from efficientsam_zoo.utils.io import write_json

        write_json(rows, args.json, indent=2)
    return rows


if __name__ == "__main__":
    main()
