"""Images/s of EfficientSAM-Ti / -S at 1024x1024 with one box prompt, fp32 and bf16, on CPU or CUDA.

    python benchmarks/encoder_throughput.py [throughput.py options]

A preset of benchmarks/throughput.py (fast path only); see that script for the side-by-side comparison
with the reference arithmetic and the official code.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import main  # noqa: E402

if __name__ == "__main__":
    main(["--paths", "fast", "--dtypes", "fp32", "bf16"] + sys.argv[1:])
