_base_ = ["./efficientsam_ti_sa1b.py"]
# Paper Figure 7: EfficientSAM-Ti's box-prompt quality against SA-1B finetuning steps. The same run as
# efficientsam_ti_sa1b.py, scored on COCO val2017 (seeded boxes, the eval-points code) after 0.1, 0.25, 0.5, 1, 2 and 5
# epochs; the curve is written to <work_dir>/prompt_quality_curve.{csv,png}.
custom_hooks = [dict(type="PromptQualityCurveHook", ann_file="data/coco/annotations/instances_val2017.json",
                     img_dir="data/coco/val2017", fractions=(0.1, 0.25, 0.5, 1, 2, 5), prompts=("box", "1pt"),
                     num_instances=5000, seed=0)]
