"""Deployment backends side by side: encoder time, decoder time per query, peak memory and mask agreement with torch
fp32, per model.

    python benchmarks/deploy.py [--models efficientsam-ti efficientsam-s] [--img-size N] [--repeats 5]
                                [--queries 8] [--calibration 8] [--litert-python .venv-litert/bin/python]
                                [--json out.json]

Rows: torch eager (fp32, the reference), torch compiled (``torch.compile`` of the encoder and the mask decoder,
inductor), onnxruntime fp32, onnxruntime int8 dynamic, onnxruntime int8 static (encoder calibrated on
``--calibration`` generated scenes), and LiteRT (``export-litert`` at the scenes' size, one click per call; the row
runs under ``--litert-python``, litert-torch's own environment, and is left out when there is none). Each row runs
in a fresh process (its peak resident memory
is the row's, graphs loaded and one image embedded), on generated 1024x768 scenes, with random weights: time does not
depend on the weights, but the IoU column (best mask of a click per object, against torch fp32's) does -- random
weights make masks noise-like, so it is a lower bound; ``tests/deploy`` measures int8 accuracy on a trained model.
Medians over ``--repeats`` images (encoder) and over every query (decoder).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

BACKENDS = ("torch", "torch-compiled", "ort-fp32", "ort-int8-dynamic", "ort-int8-static", "litert")
SIZE = (768, 1024)


def _scenes(n, seed=7_100_000):
    from efficientsam_zoo.data.synthetic import make_scene

    return [make_scene(seed + i, *SIZE) for i in range(n)]


def _row(backend: str, graphs: str, model_dir: str, repeats: int, queries: int) -> dict:
    """One backend in this (fresh) process."""
    import numpy as np

    if backend in ("torch", "torch-compiled", "litert"):
        import torch

        from efficientsam_zoo.build import efficient_sam_from_checkpoint
        from efficientsam_zoo.predictor import EfficientSamPredictor

        with open(os.path.join(graphs, "model.json")) as f:
            built = json.load(f)
        model = efficient_sam_from_checkpoint(model_dir, built["name"], **built["overrides"])
        torch.set_grad_enabled(False)
        if backend == "torch-compiled":
            model.image_encoder = torch.compile(model.image_encoder)
            model.mask_decoder = torch.compile(model.mask_decoder)
        predictor = EfficientSamPredictor(model) if backend != "litert" else _LiteRT(model, graphs)
    else:
        from efficientsam_zoo.onnx_runtime import OnnxPredictor

        folder = os.path.join(graphs, backend)
        predictor = OnnxPredictor(os.path.join(folder, "encoder.onnx"), os.path.join(folder, "decoder.onnx"))
    encoder, decoder, masks = [], [], []
    for image, objects in _scenes(repeats + 1):
        start = time.perf_counter()
        predictor.set_image(image)
        encoder.append(time.perf_counter() - start)
        for k in range(queries):
            ys, xs = np.nonzero(objects[k % len(objects)])
            click = dict(point_coords=[[xs[len(xs) // 2], ys[len(ys) // 2]]], point_labels=[1])
            start = time.perf_counter()
            out, scores, _ = predictor.predict(**click)
            decoder.append(time.perf_counter() - start)
            masks.append(np.packbits(out[np.argmax(scores)]))
    return dict(encoder_ms=1000 * statistics.median(encoder[1:]), decoder_ms=1000 * statistics.median(decoder),
                peak_mib=_peak_mib(), masks=[m.tolist() for m in masks])


class _LiteRT:
    """``set_image`` / ``predict`` (one click) on the ``.tflite`` pair, written here at the scenes' size."""

    def __init__(self, model, graphs: str) -> None:
        from efficientsam_zoo.export_litert import LITERT_FILES, LiteRTGraph, export_litert

        self.mask_threshold = model.mask_threshold
        folder = os.path.join(graphs, "litert")
        if not os.path.isfile(os.path.join(folder, LITERT_FILES["decoder"])):
            export_litert(model, folder, image_size=SIZE, queries=1, points=1)
        self.encoder = LiteRTGraph(os.path.join(folder, LITERT_FILES["encoder"]))
        self.decoder = LiteRTGraph(os.path.join(folder, LITERT_FILES["decoder"]))

    def set_image(self, image) -> None:
        from efficientsam_zoo.utils.image import image_to_array

        (self.embedding,) = self.encoder(image_to_array(image)[None])

    def predict(self, point_coords, point_labels):
        import numpy as np

        from efficientsam_zoo.onnx_runtime import upscale_logits

        low_res, scores, _, _ = self.decoder(self.embedding, np.asarray(point_coords, np.float32)[None, None],
                                             np.asarray(point_labels, np.int64)[None, None],
                                             np.asarray(SIZE, np.float32))
        return upscale_logits(low_res[0, 0], SIZE) > self.mask_threshold, scores[0, 0], low_res[0, 0]


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it starts afresh at exec, not at the fork)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["efficientsam-ti", "efficientsam-s"])
    parser.add_argument("--img-size", type=int, help="the models' input size (default: the variants', 1024)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queries", type=int, default=8, help="clicks per image")
    parser.add_argument("--calibration", type=int, default=8, help="images for the static int8 encoder")
    parser.add_argument("--litert-python", default=os.path.join(ROOT, ".venv-litert", "bin", "python"),
                        help="a Python with litert-torch (scripts/setup_env_litert.sh) for the LiteRT row")
    parser.add_argument("--json")
    parser.add_argument("--row", nargs=3, help=argparse.SUPPRESS)  # internal: backend, work folder, checkpoint
    args = parser.parse_args(argv)
    if args.row:
        print(json.dumps(_row(*args.row, args.repeats, args.queries)))
        return []
    import numpy as np
    import torch

    from efficientsam_zoo.build import build_efficient_sam
    from efficientsam_zoo.checkpoints import save_official_checkpoint
    from efficientsam_zoo.export_onnx import export_onnx
    from efficientsam_zoo.onnx_quantize import quantize_int8
    from efficientsam_zoo.utils.io import save_png

    rows = []
    for name in args.models:
        work = tempfile.mkdtemp(prefix="deploy-bench-")
        torch.manual_seed(0)
        model = build_efficient_sam(name, **({"img_size": args.img_size} if args.img_size else {}))
        model_dir = os.path.join(work, "weights.pt")  # the release's format, read back by the torch row
        save_official_checkpoint(model, model_dir)
        with open(os.path.join(work, "model.json"), "w") as f:
            json.dump(dict(name=name, overrides={"img_size": args.img_size} if args.img_size else {}), f)
        export_onnx(model, os.path.join(work, "ort-fp32"))
        quantize_int8(os.path.join(work, "ort-fp32"), os.path.join(work, "ort-int8-dynamic"))
        calibration = []
        for i, (image, _) in enumerate(_scenes(args.calibration, seed=7_200_000)):
            calibration.append(os.path.join(work, f"calibration_{i}.png"))
            save_png(image, calibration[-1])
        quantize_int8(os.path.join(work, "ort-fp32"), os.path.join(work, "ort-int8-static"), calibration)
        results = {}
        for backend in BACKENDS:
            python = args.litert_python if backend == "litert" else sys.executable
            if not os.path.isfile(python):
                print(f"{backend}: left out, no {python} (scripts/setup_env_litert.sh makes it)", file=sys.stderr)
                continue
            out = subprocess.run([python, __file__, "--row", backend, work, model_dir, "--repeats",
                                  str(args.repeats), "--queries", str(args.queries)],
                                 capture_output=True, text=True, check=True)
            results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
        reference = [np.unpackbits(np.array(m, np.uint8)).astype(bool) for m in results["torch"]["masks"]]
        for backend, r in results.items():
            ours = [np.unpackbits(np.array(m, np.uint8)).astype(bool) for m in r.pop("masks")]
            iou = [(a & b).sum() / max((a | b).sum(), 1) for a, b in zip(ours, reference)]
            rows.append(dict(model=name, backend=backend, **r, mask_iou=float(np.mean(iou)),
                             encoder_mb=_encoder_mib(work, backend)))
    print("| model | backend | encoder ms | decoder ms / query | peak MiB | encoder file MiB | mask IoU vs torch |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        size = f"{r['encoder_mb']:.1f}" if r["encoder_mb"] else "-"
        print(f"| {r['model']} | {r['backend']} | {r['encoder_ms']:.0f} | {r['decoder_ms']:.1f} | {r['peak_mib']:.0f} "
              f"| {size} | {r['mask_iou']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


def _encoder_mib(work: str, backend: str):
    """The encoder file's size (None for the torch rows)."""
    name = {"litert": "encoder.tflite"}.get(backend, "encoder.onnx")
    path = os.path.join(work, backend, name)
    return os.path.getsize(path) / 2 ** 20 if os.path.isfile(path) else None


if __name__ == "__main__":
    main()
