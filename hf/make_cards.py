#!/usr/bin/env python
"""Regenerate hf/cards/<name>.md from the one template in efficientsam_zoo/integrations/hf/cards.py."""
import os
import sys

from efficientsam_zoo.integrations.hf.cards import CARD_NAMES, make_model_card
from efficientsam_zoo.utils.io import atomic_path


def main() -> int:
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cards")
    for name in CARD_NAMES:
        path = os.path.join(out, f"{name}.md")
        with atomic_path(path) as tmp:
            make_model_card(name).save(tmp)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
