"""The data registry: real downloads over loopback, checksums, clear errors, dataset shapes."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch

from mmcourse.data import (
    FSDD,
    REGISTRY,
    ChecksumError,
    DataNotFoundError,
    fashion_mnist,
    fetch,
    mnist_pool,
    read_verified,
    tiny_shakespeare,
)
from mmcourse.data.images import pool_indices
from tests._helpers import serve, shared_datasets


def test_download_from_loopback_mirror_verifies_and_renames(tmp_path, monkeypatch):
    src = shared_datasets()
    with serve(src) as url:
        monkeypatch.setenv("MMCOURSE_MIRROR", url)
        for name in ("mnist", "tinyshakespeare", "fsdd"):
            paths = fetch(name, root=tmp_path)
            assert all(p.is_file() for p in paths)
    # Verified content equals the shared copy, and no temporary file is left behind.
    assert (tmp_path / "mnist/t10k-labels-idx1-ubyte.gz").read_bytes() == (
        src / "mnist/t10k-labels-idx1-ubyte.gz"
    ).read_bytes()
    assert not list(tmp_path.rglob(".*part*"))
    assert len(list((tmp_path / "fsdd/recordings").glob("*.wav"))) == 3000
    monkeypatch.setenv("MMCOURSE_DATA", str(tmp_path))
    assert len(read_verified("tinyshakespeare")[0]) == 1_115_394


def test_download_with_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror" / "tinyshakespeare"
    mirror.mkdir(parents=True)
    (mirror / "input.txt").write_text("not shakespeare")
    with serve(tmp_path / "mirror") as url:
        monkeypatch.setenv("MMCOURSE_MIRROR", url)
        with pytest.raises(ChecksumError, match="tinyshakespeare"):
            fetch("tinyshakespeare", root=tmp_path / "data")
    assert not (tmp_path / "data/tinyshakespeare/input.txt").exists()
    assert not list((tmp_path / "data").rglob("*part*"))


def test_missing_file_without_network_names_dataset_path_and_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_MIRROR", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(DataNotFoundError) as err:
        fetch("mnist", root=tmp_path)
    msg = str(err.value)
    assert "'mnist'" in msg and str(tmp_path / "mnist") in msg
    assert "connect to the internet" in msg and "MMCOURSE_DATA" in msg


def test_corrupt_file_raises_checksum_error_naming_the_file(tmp_path, monkeypatch):
    src = shared_datasets()
    shutil.copytree(src / "mnist", tmp_path / "mnist")
    labels = tmp_path / "mnist/t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(labels.read_bytes()))
    data[100] = (data[100] + 1) % 10  # one wrong label
    labels.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        read_verified("mnist", root=tmp_path)
    labels.write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz"):
        read_verified("mnist", root=tmp_path)


def test_fsdd_corruption_is_detected(tmp_path):
    src = shared_datasets()
    shutil.copytree(src / "fsdd", tmp_path / "fsdd")
    victim = tmp_path / "fsdd/recordings/7_theo_3.wav"
    victim.write_bytes(victim.read_bytes()[:-10])
    with pytest.raises(ChecksumError, match="fsdd"):
        read_verified("fsdd", root=tmp_path)


def test_unknown_dataset():
    with pytest.raises(KeyError, match="known"):
        fetch("imagenet")


def test_registry_has_checksums_for_every_file():
    for info in REGISTRY.values():
        assert len(info.files) == len(info.urls)
        assert info.combined_sha256 or (info.sha256 and len(info.sha256) == len(info.files))
        assert all(u.startswith("http") for u in info.urls)


def test_mnist_pool_split_is_fixed_stratified_and_disjoint():
    shared_datasets()
    idx = pool_indices()
    sets = [set(idx[s].tolist()) for s in ("train", "val", "test")]
    assert [len(s) for s in sets] == [8000, 1000, 1000]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    test = mnist_pool("test")
    assert test.x.shape == (1000, 1, 28, 28) and test.x.dtype == torch.float32
    assert 0.0 <= test.x.min() and test.x.max() <= 1.0
    counts = test.y.bincount(minlength=10).numpy()
    full = mnist_pool("all").y.bincount(minlength=10).numpy() / 10
    assert np.abs(counts - full).max() <= 1  # stratified: each class within one image of its share
    assert int(idx["test"][:5].sum()) == int(pool_indices()["test"][:5].sum())  # deterministic


def test_fashion_mnist_shapes_and_balance():
    shared_datasets()
    tr, te = fashion_mnist("train"), fashion_mnist("test")
    assert tr.x.shape == (60000, 1, 28, 28) and te.x.shape == (10000, 1, 28, 28)
    assert tr.y.bincount().tolist() == [6000] * 10


def test_fsdd_official_and_speaker_splits():
    shared_datasets()
    train, test = FSDD("train"), FSDD("test")
    assert (len(train), len(test)) == (2700, 300)
    assert train.waves.shape == (2700, 8000) and train.waves.dtype == torch.float32
    assert all(r.take >= 5 for r in train.recordings) and all(r.take < 5 for r in test.recordings)
    held = FSDD("test", by="speaker", test_speaker="jackson")
    assert len(held) == 500 and set(held.speakers) == {"jackson"}
    assert "jackson" not in FSDD("train", by="speaker", test_speaker="jackson").speakers
    assert int(train.lengths.max()) == 8000 and int(train.lengths.min()) > 1000
    with pytest.raises(ValueError, match="test_speaker"):
        FSDD("test", by="speaker", test_speaker="nobody")


def test_speaker_metadata_matches_shared_copy():
    import json

    from mmcourse.data import SPEAKERS

    path = shared_datasets() / "fsdd/speakers.json"
    assert json.loads(path.read_text()) == SPEAKERS


def test_tiny_shakespeare():
    shared_datasets()
    text = tiny_shakespeare()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
