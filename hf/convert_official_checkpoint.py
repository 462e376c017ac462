#!/usr/bin/env python
"""Convert an official EfficientSAM checkpoint into a Hugging Face model directory.

    python hf/convert_official_checkpoint.py --checkpoint weights/efficient_sam_vits.pt \
        --variant efficientsam-s --out efficientsam-s-hf

Writes model.safetensors, config.json, preprocessor_config.json and README.md (model card), after checking
that the reloaded directory reproduces the original model's outputs on a probe input.
"""
import argparse
import sys

from efficientsam_zoo.integrations.hf.cards import convert_official_checkpoint
from efficientsam_zoo.registry import EFFICIENT_SAM_NAMES


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, help="efficient_sam_vit{t,s}.pt or .pt.zip")
    ap.add_argument("--variant", required=True, choices=EFFICIENT_SAM_NAMES)
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    args = ap.parse_args(argv)
    try:
        report = convert_official_checkpoint(args.checkpoint, args.variant, args.out, overwrite=args.overwrite)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {int(report['parameters']):,} parameters, "
          f"max |difference| to the original on the probe input: {report['max_abs_diff']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
