"""The efficientsam-zoo demo as a Hugging Face Space (the same app ``efficientsam-zoo demo`` serves).

The model comes from the environment: ``EFFICIENTSAM_CHECKPOINT`` (a released checkpoint file or a model folder in
the Space) or ``EFFICIENTSAM_MODEL`` (a variant name whose released weights are downloaded; default efficientsam-ti).
"""
import os

from efficientsam_zoo.cli.common import load_model_from_args
from efficientsam_zoo.cli.demo import write_examples
from efficientsam_zoo.demo import DemoBackend, build_demo

CHECKPOINT = os.environ.get("EFFICIENTSAM_CHECKPOINT") or None
MODEL = os.environ.get("EFFICIENTSAM_MODEL") or (None if CHECKPOINT else "efficientsam-ti")

backend = DemoBackend(load_model_from_args(MODEL, CHECKPOINT))
examples = write_examples(os.path.join(backend.work_dir, "examples"), max(128, min(backend.model.img_size, 512)))
demo = build_demo(backend, examples, title=f"EfficientSAM ({CHECKPOINT or MODEL})")

if __name__ == "__main__":
    demo.queue().launch(allowed_paths=[backend.work_dir])
