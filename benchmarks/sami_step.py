"""Images/s of one SAMI training step: frozen SAM teacher forward + student forward/backward + AdamW step.

    python benchmarks/sami_step.py [--students vit-ti vit-s] [--batch 64] [--teacher vit_h|vit_l|vit_b]
                                   [--teacher-batch 8] [--device cpu|cuda] [--dtype fp32|bf16] [--json out.json]

The teacher and the student are timed separately (the teacher's features could also be precomputed,
see efficientsam_zoo.tools.precompute_teacher); the combined step rate is 1 / (1/student + 1/teacher).
Random weights, 224-px student crops, the teacher at 1024 px as in training. Medians of --repeats runs.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import median_time  # noqa: E402
from efficientsam_zoo.modeling.sami import Sami  # noqa: E402
from efficientsam_zoo.modeling.teachers import ViTTeacher, sam_image_encoder  # noqa: E402
from efficientsam_zoo.modeling.vit import VIT_SIZES, ViT  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def bench_student(arch, batch, device, dtype, warmup, repeats):
    model = Sami(ViT(img_size=224, neck_dim=None, **VIT_SIZES[arch]), teacher_dim=256).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.05)
    images = torch.randn(batch, 3, 224, 224, device=device)
    target = torch.randn(batch, 256, 14, 14, device=device)
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype], enabled=dtype != "fp32")

    def step():
        with autocast:
            loss = model(images, target)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return batch / median_time(step, device, warmup, repeats)


def bench_teacher(size, batch, device, dtype, warmup, repeats):
    teacher = ViTTeacher(sam_image_encoder(size)).to(device)
    images = torch.randn(batch, 3, 224, 224, device=device)
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[dtype], enabled=dtype != "fp32")

    def step():
        with autocast:
            teacher(images)

    return batch / median_time(step, device, warmup, repeats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", nargs="+", default=["vit-ti", "vit-s"], choices=sorted(VIT_SIZES))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--teacher", default="vit_h", choices=["vit_h", "vit_l", "vit_b", "none"])
    ap.add_argument("--teacher-batch", type=int, default=8)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.machine()
    print(f"# {args.device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads, {args.dtype}")
    teacher_ips = None
    if args.teacher != "none":
        teacher_ips = bench_teacher(args.teacher, args.teacher_batch, args.device, args.dtype, args.warmup,
                                    args.repeats)
    rows = []
    for arch in args.students:
        student_ips = bench_student(arch, args.batch, args.device, args.dtype, args.warmup, args.repeats)
        combined = 1.0 / (1.0 / student_ips + 1.0 / teacher_ips) if teacher_ips else None
        rows.append(dict(student=arch, teacher=args.teacher, batch=args.batch, device=args.device, dtype=args.dtype,
                         student_images_per_s=student_ips, teacher_images_per_s=teacher_ips,
                         step_images_per_s=combined))
    print("| student | batch | student step img/s | teacher | teacher img/s | teacher + student img/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        t = f"{r['teacher_images_per_s']:.2f}" if r["teacher_images_per_s"] else "-"
        c = f"{r['step_images_per_s']:.2f}" if r["step_images_per_s"] else "-"
        print(f"| {r['student']} | {r['batch']} | {r['student_images_per_s']:.2f} | {r['teacher']} | {t} | {c} |")
    if args.json:
        from efficientsam_zoo.utils.io import write_json

        write_json(rows, args.json, indent=2)


if __name__ == "__main__":
    main()
