#!/usr/bin/env python
"""Upload a converted model directory to the Hugging Face Hub (dry run unless --no-dry-run).

    python hf/push_to_hub.py --folder efficientsam-s-hf --repo-id your-org/efficientsam-s [--no-dry-run]
"""
import argparse
import sys

from efficientsam_zoo.integrations.hf.cards import push_folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folder", required=True)
    ap.add_argument("--repo-id", required=True)
    ap.add_argument("--private", action="store_true")
    ap.add_argument("--no-dry-run", dest="dry_run", action="store_false", help="really upload (needs a token)")
    args = ap.parse_args(argv)
    try:
        files = push_folder(args.folder, args.repo_id, dry_run=args.dry_run, private=args.private)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verb = "would upload" if args.dry_run else "uploaded"
    print(f"{verb} to {args.repo_id}: " + ", ".join(files))
    if args.dry_run:
        print("dry run: nothing was sent; pass --no-dry-run to upload")
    return 0


if __name__ == "__main__":
    sys.exit(main())
