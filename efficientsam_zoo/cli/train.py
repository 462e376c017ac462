"""The training commands: ``quickstart``, ``pretrain`` / ``train`` (mmengine's Runner), ``finetune`` (EfficientSAM on
your own masks), ``finetune-cls`` (the HF Trainer) and ``export-backbone``. Each hands its options to the entry point
in ``efficientsam_zoo.tools``."""
from __future__ import annotations

import argparse
import os

from .common import device
from .demo import QUICKSTART_MODEL

__all__ = ["add_parsers"]


def cmd_quickstart(args: argparse.Namespace) -> int:
    from ..quickstart import run_quickstart  # the frameworks load only for the command that needs them
    from ..quickstart.report import console_table

    summary = run_quickstart(args.out_dir, checkpoint=args.checkpoint, device=device(args.device), seed=args.seed,
                             verbose=args.verbose)
    print(console_table(summary))
    print(f"framework logs -> {summary['logs']}/")
    print(f"report -> {summary['report']}")
    if os.path.isdir(os.path.join(args.out_dir, "model")):  # the finetuned model the demo serves
        where = "" if os.path.normpath(args.out_dir) == os.path.dirname(QUICKSTART_MODEL) else f" --run {args.out_dir}"
        print(f"click on it: efficientsam-zoo demo{where}   (pip install 'efficientsam-zoo[demo]' first)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..tools.train import main as train_main

    return train_main([args.config] + args.rest)


def cmd_finetune_cls(args: argparse.Namespace) -> int:
    from ..tools.train_cls import main as cls_main

    return cls_main(args.rest)


def cmd_finetune(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    if find_spec("mmengine") is None:
        raise SystemExit("error: finetune trains with mmengine's Runner, which is not installed: pip install "
                         "'efficientsam-zoo[mmdet]' (or bash scripts/setup_env.sh)")
    from ..tools.finetune import main as finetune_main

    return finetune_main(args.rest)


#: Commands whose every option belongs to their tool: ``main`` hands the rest of the command line over unparsed.
TOOL_COMMANDS = {"finetune": cmd_finetune, "finetune-cls": cmd_finetune_cls}


def cmd_export_backbone(args: argparse.Namespace) -> int:
    from ..tools.export_backbone import main as export_main

    return export_main([args.checkpoint] + args.rest)


def add_parsers(sub) -> None:
    qs = sub.add_parser("quickstart", help="offline end-to-end run on generated scenes: every stage learns; a report")
    qs.add_argument("--out-dir", default="quickstart_out")
    qs.add_argument("--checkpoint", help="released weights (efficient_sam_vitt.pt ...): segment with them, no training")
    qs.add_argument("--seed", type=int, default=0)
    qs.add_argument("--device")
    qs.add_argument("--verbose", action="store_true", help="show the frameworks' logs on the console too")
    qs.set_defaults(func=cmd_quickstart)

    for name, text in (("pretrain", "SAMI pretraining from an mm_configs/sami_pretrain_*.py config"),
                       ("train", "train any mm_configs/ config with mmengine's Runner")):
        tr = sub.add_parser(name, help=text, add_help=False,
                            description="Options as python -m efficientsam_zoo.tools.train --help lists them.")
        tr.add_argument("config")
        tr.add_argument("rest", nargs=argparse.REMAINDER)
        tr.set_defaults(func=cmd_train)
    ft = sub.add_parser("finetune", help="EfficientSAM on your own masks (COCO / LVIS JSON or a mask folder), one command",
                        add_help=False, description="Options as python -m efficientsam_zoo.tools.finetune --help.")
    ft.add_argument("rest", nargs=argparse.REMAINDER)
    ft.set_defaults(func=cmd_finetune)
    fc = sub.add_parser("finetune-cls", help="ImageNet-style classification finetuning with the HF Trainer",
                        add_help=False, description="Options as python -m efficientsam_zoo.tools.train_cls --help.")
    fc.add_argument("rest", nargs=argparse.REMAINDER)
    fc.set_defaults(func=cmd_finetune_cls)
    ex = sub.add_parser("export-backbone", help="SAMI training checkpoint -> plain backbone (.safetensors)",
                        add_help=False)
    ex.add_argument("checkpoint")
    ex.add_argument("rest", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_export_backbone)
