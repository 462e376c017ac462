"""The one prompt validation: every entry point (predictor, HF processor and model, CLI, ONNX predictor) turns the
prompts it was given into the decoder's ``points [Q, N, 2]`` + ``labels [Q, N]`` through :func:`assemble_prompts`,
once per call path.

Prompts are (x, y) pixels of the image they belong to; labels as the model takes them (``modeling.prompt_encoder``:
1 point, 0 no label / negative, 2 / 3 box corners, -1 padding); a box ``(x0, y0, x1, y1)`` is appended to its query as
two corner points. Each problem gets one error naming it: NaN / inf values (NaN compares False with everything, so a
range check alone would let it through as padding), fractional or unknown labels, reversed boxes, more points than
the decoder takes, points outside the image.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .utils.image import as_numpy
from .utils.prompt_checks import NO_NEGATIVES, assemble_prompt_arrays, check_mask_input_array

__all__ = ["assemble_prompts", "NO_NEGATIVES", "check_mask_input"]


def assemble_prompts(point_coords, point_labels, boxes, image_size: Optional[Tuple[int, int]], max_points: int,
                     allow_padding: bool = False, negatives: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """The one prompt validation: points ``[Q, N, 2]`` + labels ``[Q, N]`` and / or boxes ``[Q, 4]`` (pixels of an
    image of ``image_size = (H, W)``) -> ``points [Q, N', 2]`` and ``labels [Q, N']`` on the CPU, boxes appended as
    two corner points (labels 2, 3). ``allow_padding``: label -1 marks a padding slot whose coordinates are not
    checked (the batched Hugging Face inputs). ``negatives``: the model takes label 0 as a negative click
    (``EfficientSam.negative_points``); otherwise label 0 is refused. ``image_size=None`` skips the range check
    (prompts already checked in their image's pixel frame, then rescaled). The checks themselves are numpy
    (``utils.prompt_checks``), shared with the torch-free ONNX predictor.
    """
    points, labels = assemble_prompt_arrays(as_numpy(point_coords), as_numpy(point_labels), as_numpy(boxes), image_size,
                                            max_points, allow_padding, negatives)
    return torch.from_numpy(points), torch.from_numpy(labels)


def check_mask_input(mask_input, queries: int, size: Tuple[int, int], mask_prompts: bool) -> Optional[torch.Tensor]:
    """A mask prompt (SamPredictor's ``mask_input``: the previous round's low-res logits) -> ``[Q, 1, h, w]`` float on
    the CPU; ``[1, h, w]`` / ``[h, w]`` serve every one of ``queries``. ``None`` stays ``None``
    (``utils.prompt_checks.check_mask_input_array``)."""
    checked = check_mask_input_array(as_numpy(mask_input), queries, size, mask_prompts)
    return None if checked is None else torch.from_numpy(checked).expand(queries, -1, -1, -1)

