"""``utils.masks.small_regions`` (SAM 2's hole / sprinkle finder) on hand-drawn masks."""
import torch

from efficientsam_zoo.utils.masks import small_regions


def _scores(rows):
    return torch.tensor([[1.0 if c == "#" else -1.0 for c in r] for r in rows])[None, None]


def test_small_regions_by_hand():
    """Scores > 0 are the mask. Regions are 8-connected, as SAM 2 counts them: pixels that touch only at a corner
    form one region of 2."""
    holes = _scores(["#####",
                     "#.###",
                     "####.",
                     "###.#",
                     "#####"])
    assert small_regions(holes, max_area=1)[0, 0].nonzero().tolist() == [[1, 1]]
    assert small_regions(holes, max_area=2)[0, 0].nonzero().tolist() == [[1, 1], [2, 4], [3, 3]]
    assert not small_regions(holes, max_area=21, foreground=True).any()  # the mask itself is one region of 22
    assert small_regions(holes, max_area=22, foreground=True).sum() == 22
    specks = _scores([".....",
                      ".#...",
                      ".....",
                      "...#.",
                      "....#"])
    assert small_regions(specks, max_area=1, foreground=True)[0, 0].nonzero().tolist() == [[1, 1]]
    assert small_regions(specks, max_area=2, foreground=True).sum() == 3
    assert small_regions(specks, max_area=1000).sum() == 22  # any background region counts, the border one too
