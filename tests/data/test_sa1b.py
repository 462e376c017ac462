"""SA-1B reading: tar shards indexed once and read without unpacking, masks decoded lazily, the same samples as an
unpacked folder and as an independent decode."""
import json
import os
import tarfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from efficientsam_zoo.data.sa1b import SA1BSamples
from efficientsam_zoo.data.synthetic import make_sa1b_shards
from efficientsam_zoo.utils.masks import decode_rle


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("sa1b")
    return make_sa1b_shards(str(root), n_shards=2, images_per_shard=3, size=(160, 120))


def test_tar_shards_are_read_without_unpacking_and_masks_lazily(shards, tmp_path):
    before = set(os.listdir(os.path.dirname(shards[0])))
    ds = SA1BSamples(shards, img_size=128, max_masks=2)
    assert len(ds) == 6 and ds.decoded == 0  # indexing reads tar headers only
    sample = ds[4]
    assert ds.decoded == int(sample["valid"].sum()) <= 2
    assert set(os.listdir(os.path.dirname(shards[0]))) == before
    assert sample["image"].shape == (3, 128, 128) and sample["masks"].shape == (2, 32, 32)
    # the same sample from an unpacked folder, and an independent decode + resize of its first mask
    folder = tmp_path / "unpacked"
    with tarfile.open(shards[1]) as tar:
        tar.extractall(folder)
    same = SA1BSamples([str(folder)], img_size=128, max_masks=2)[1]
    torch.testing.assert_close(same["image"], sample["image"])
    with tarfile.open(shards[1]) as tar:
        record = json.loads(tar.extractfile("sa_5.json").read())
    rng = np.random.default_rng([0, 4])
    j = rng.choice(len(record["annotations"]), size=2, replace=False)[0]
    m = torch.from_numpy(decode_rle(record["annotations"][j]["segmentation"]).astype(np.float32))
    expected = F.interpolate(m[None, None], (32, 32), mode="area")[0, 0] > 0.5
    torch.testing.assert_close(sample["masks"][0], expected)
    x, y, w, h = record["annotations"][j]["bbox"]
    torch.testing.assert_close(sample["boxes"][0], torch.tensor([x * 128 / 160, y * 128 / 120, (x + w) * 128 / 160,
                                                                 (y + h) * 128 / 120]))


def test_shard_index_is_cached_and_follows_the_shard(tmp_path):
    """One header pass per shard, cached under $ESZ_CACHE_DIR; a changed shard is indexed again; reads (also from
    a pickled copy, as DataLoader workers get) equal tarfile's own extraction."""
    import pickle

    from efficientsam_zoo.data import sa1b

    (shard,) = make_sa1b_shards(str(tmp_path / "a"), n_shards=1, images_per_shard=4, size=(64, 48))
    cache = sa1b._index_cache_path(shard)
    assert cache.startswith(os.environ["ESZ_CACHE_DIR"]) and not os.path.exists(cache)
    index = sa1b.SA1BIndex([shard])
    assert os.path.isfile(cache) and os.listdir(tmp_path / "a") == [os.path.basename(shard)]
    passes = []
    real_open = tarfile.open
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tarfile, "open", lambda *a, **k: passes.append(a) or real_open(*a, **k))
        again = sa1b.SA1BIndex([shard])
        assert passes == []  # served from the cache
        for i in range(len(again)):
            img, record = pickle.loads(pickle.dumps(again)).read(i)
            with real_open(shard) as tar:
                assert img == tar.extractfile(again.items[i][1]).read()
                assert record == json.loads(tar.extractfile(again.items[i][2]).read())
        make_sa1b_shards(str(tmp_path / "a"), n_shards=1, images_per_shard=2, size=(64, 48), seed=1)  # rewritten
        changed = sa1b.SA1BIndex([shard])
    assert [a[1] for a in passes] == ["w", "r:"] and len(changed) == 2 and len(index) == 4  # written, indexed
