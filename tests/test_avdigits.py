"""AVDigits: seeded pairing of the same digit, no image or recording shared between splits,
the degradations do what the recipe says, and the batches cover every item once."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmcourse.audio import add_noise
from mmcourse.data import AVDigits, DictBatches
from mmcourse.data.avdigits import (
    RECIPE,
    TRAIN_RECIPE,
    _pca_basis,
    decode_words,
    noisy_images,
    occlude,
    pairing,
    remove_pca_energy,
    snr_levels,
    typo_words,
)
from mmcourse.data.images import _mnist_arrays, pool_indices
from tests._helpers import shared_datasets


@pytest.fixture(scope="module", autouse=True)
def _data():
    shared_datasets()


def test_splits_never_share_an_image_or_a_recording():
    pairs = {s: pairing(s) for s in ("train", "val", "test")}
    assert [len(pairs[s][0]) for s in pairs] == [2400, 300, 300]
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        assert not set(pairs[a][0]) & set(pairs[b][0]), f"a recording is in {a} and {b}"
        assert not set(pairs[a][1]) & set(pairs[b][1]), f"an image is in {a} and {b}"
    from mmcourse.data.avdigits import AUDIO_TAKES, _fsdd_all

    for s, (rec, img) in pairs.items():
        assert {_fsdd_all().recordings[i].take for i in rec} == set(AUDIO_TAKES[s])
        assert len(set(img)) == len(img)  # no image used twice
        assert set(img) <= set(pool_indices()[s])  # images come from the pool split of the same name


def test_pairs_show_the_same_digit_and_the_pairing_is_seeded():
    from mmcourse.data.avdigits import _fsdd_all

    rec, img = pairing("val")
    _, labels = _mnist_arrays()
    fsdd = _fsdd_all()
    assert np.array_equal(fsdd.labels.numpy()[rec], labels[img])
    assert np.array_equal(pairing("val")[1], img)  # same seed, same pairs
    assert not np.array_equal(pairing("val", pair_seed=1)[1], img)
    with pytest.raises(ValueError, match="split"):
        pairing("dev")


def test_pca_removal_removes_the_asked_share_of_variance():
    mean, comps, share = _pca_basis()
    assert torch.isclose(share.sum(), torch.tensor(1.0))
    images, _ = _mnist_arrays()
    x = torch.from_numpy(images[pool_indices()["train"][:2000]].astype(np.float32) / 255).unsqueeze(1)
    y = remove_pca_energy(x, 0.75)
    k = int(torch.searchsorted(share.cumsum(0), torch.tensor(0.75))) + 1
    proj = (y.reshape(-1, 784) - mean) @ comps[:, :k]
    assert proj.abs().max() < 1e-3  # nothing left along the removed components
    var_before = (x.reshape(-1, 784) - mean).pow(2).sum(1).mean()
    var_after = (y.reshape(-1, 784) - mean).pow(2).sum(1).mean()
    assert 0.2 < float(var_after / var_before) < 0.3  # about 25 % of the energy is left
    assert torch.equal(remove_pca_energy(x, 0.0), x)
    with pytest.raises(ValueError, match="share"):
        remove_pca_energy(x, 1.0)
    with pytest.raises(ValueError, match=r"\[N, 1, 28, 28\]"):
        remove_pca_energy(x[:, 0], 0.5)


def test_image_noise_and_occlusion():
    x = torch.zeros(500, 1, 28, 28)
    n = noisy_images(x, 0.3, seed=0)
    assert abs(float(n.std()) - 0.3) < 0.01 and torch.equal(n, noisy_images(x, 0.3, seed=0))
    o = occlude(torch.ones(50, 1, 28, 28), 14, seed=0)
    assert bool(((o == 0).sum((1, 2, 3)) == 196).all())  # one 14x14 square each


def test_noise_ranges_draw_one_level_per_example():
    g = torch.Generator().manual_seed(5)
    want = 0.4 * torch.rand(400, 1, generator=g)  # the levels noisy_images draws for seed 5
    n = noisy_images(torch.zeros(400, 1, 28, 28), (0.0, 0.4), seed=5)
    got = n.reshape(400, -1).std(1)  # each image's own noise std
    assert torch.allclose(got, want[:, 0], atol=0.01, rtol=0.06)
    assert float(got.min()) < 0.05 and float(got.max()) > 0.35  # the range is covered
    # audio: each recording gets its own SNR, measured back from the noise that was added
    wave = torch.randn(300, 8000, generator=torch.Generator().manual_seed(1))
    snr = snr_levels((-6.0, 40.0), 3000, torch.Generator().manual_seed(2))  # [3000, 1] dB
    noisy = add_noise(wave.repeat(10, 1), snr, generator=torch.Generator().manual_seed(3))
    measured = 10 * torch.log10(wave.repeat(10, 1).pow(2).mean(1) / (noisy - wave.repeat(10, 1)).pow(2).mean(1))
    assert torch.allclose(measured, snr[:, 0], atol=1e-3)
    amp = 10 ** (-snr / 20)  # noise / signal amplitude: uniform from 0.01 (40 dB) to 2 (-6 dB)
    assert float(amp.min()) >= 0.01 - 1e-6 and float(amp.max()) <= 2 + 1e-5
    assert abs(float(amp.mean()) - 1.005) < 0.03 and abs(float((snr <= -3).float().mean()) - (2 - 2**0.5) / 1.99) < 0.03
    with pytest.raises(ValueError, match="low <= high"):
        noisy_images(torch.zeros(2, 1, 28, 28), (0.4, 0.1), seed=0)
    with pytest.raises(ValueError, match="low <= high"):
        snr_levels((20.0, -6.0), 3, torch.Generator())
    # the chapter's recipe: train covers val / test's level at its noisy end
    assert TRAIN_RECIPE["audio_snr_db"][0] == RECIPE["audio_snr_db"]
    assert TRAIN_RECIPE["image_noise"][1] == RECIPE["image_noise"]


def test_typo_words_and_decoding():
    y = torch.arange(10)
    assert decode_words(typo_words(y, 0.0, seed=0)) == ["zero", "one", "two", "three", "four", "five",
                                                       "six", "seven", "eight", "nine"]
    noisy = typo_words(y.repeat(200), 0.4, seed=0)
    clean = typo_words(y.repeat(200), 0.0, seed=0)
    changed = float(((noisy != clean) & (clean > 0)).sum() / (clean > 0).sum())
    assert 0.35 < changed < 0.4  # 0.4 minus the 1/26 chance of drawing the same letter
    assert bool(((noisy == 0) == (clean == 0)).all())  # padding is never touched


def test_test_split_modalities_and_audio_snr():
    clean = AVDigits("test")
    noisy = AVDigits("test", audio_snr_db=0.0, image_pca_removed=0.75, text_typo=0.5)
    assert clean.image.shape == (300, 1, 28, 28) and clean.audio.shape == (300, 40, 101)
    assert noisy.modalities == ("image", "audio", "text") and noisy.text.shape == (300, 5)
    assert torch.equal(clean.labels, noisy.labels) and torch.equal(clean.wave, noisy.wave)
    # white noise at 0 dB raises the quiet Mel bins: the mean log-Mel level goes up
    assert float(noisy.audio.mean()) > float(clean.audio.mean()) + 5
    stats = clean.stats()
    x = clean.inputs(stats)
    assert abs(float(x["image"].mean())) < 1e-4 and abs(float(x["audio"].std()) - 1) < 1e-4


def test_dict_batches_cover_every_item_once():
    x = {"a": torch.arange(10).float(), "b": torch.arange(10) * 2}
    batches = DictBatches(x, torch.arange(10), batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 3
    seen = torch.cat([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for xb, yb in batches:
        assert torch.equal(xb["b"], 2 * yb) and torch.equal(xb["a"], yb.float())
    with pytest.raises(ValueError, match="labels"):
        DictBatches({"a": torch.zeros(3)}, torch.zeros(4))
