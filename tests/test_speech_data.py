"""The digit-string utterance builder: one speaker per utterance, splits never share takes or the
held-out speaker, boundaries match the audio, the string recipe holds."""

from collections import Counter

import pytest
import torch

from mmcourse.data import digit_strings as ds
from tests._helpers import shared_datasets


def test_string_recipe():
    strings = ds.digit_strings(4000, seed=0)
    assert all(s.isdigit() and 3 <= len(s) <= 10 for s in strings)
    lengths = Counter(len(s) for s in strings)
    assert 0.35 < lengths[10] / len(strings) < 0.5  # phone numbers (and some uniform strings)
    phones = [s for s in strings if len(s) == 10 and s[:3] in ds.AREA_CODES]
    assert 0.4 < sum(s[3:6] == "555" for s in phones) / len(phones) < 0.6
    assert ds.digit_strings(5, seed=3) == ds.digit_strings(5, seed=3)
    assert ds.to_words("307") == "three zero seven"
    with pytest.raises(ValueError, match="0-9"):
        ds.to_words("3a")


@pytest.fixture(scope="module")
def splits():
    shared_datasets()
    return {s: ds.build_utterances(s, 60) for s in ("train", "val", "test", "unseen", "adapt")}


def test_splits_never_mix_speakers_or_takes(splits):
    for split, utts in splits.items():
        takes = set(ds.SPLIT_TAKES[split])
        for u in utts:
            assert u.split == split and len(u.takes) == len(u.digits)
            assert all(t in takes for _, t in u.takes), (split, u.takes)
            assert [d for d, _ in u.takes] == u.labels
            if split in ("unseen", "adapt"):
                assert u.speaker == ds.HELD_OUT
            else:
                assert u.speaker in ds.TRAIN_SPEAKERS and u.speaker != ds.HELD_OUT
    used = {s: {(u.speaker, d, t) for u in utts for d, t in u.takes} for s, utts in splits.items()}
    assert not used["train"] & used["test"] and not used["train"] & used["val"] and not used["val"] & used["test"]
    assert {s for s, _, _ in used["unseen"] | used["adapt"]} == {ds.HELD_OUT}
    assert not used["unseen"] & used["adapt"]


def test_one_speaker_per_utterance_and_boundaries(splits):
    pool = ds._pool()
    u = ds.build_utterances("test", 3, augment=False)[0]
    for (d, t), (a, b) in zip(u.takes, u.bounds, strict=True):
        assert torch.equal(u.wave[a:b], pool[(u.speaker, d, t)].clamp(-1, 1))  # the speaker's own recording
    for utts in splits.values():
        for v in utts:
            assert all(0 <= a < b <= v.wave.numel() for a, b in v.bounds)
            assert all(b1 < a2 for (_, b1), (a2, _) in zip(v.bounds, v.bounds[1:], strict=False))  # pauses between words


def test_test_set_is_fixed_and_noise_keeps_the_utterances(splits):
    again = ds.build_utterances("test", 60)
    assert all(torch.equal(a.wave, b.wave) and a.digits == b.digits for a, b in zip(again, splits["test"], strict=True))
    noisy = ds.build_utterances("test", 5, snr_db=10)
    for a, b in zip(noisy, splits["test"][:5], strict=True):
        assert a.digits == b.digits and a.takes == b.takes
        snr = 10 * torch.log10(b.wave.pow(2).mean() / (a.wave - b.wave).pow(2).mean())
        assert abs(float(snr) - 10) < 0.5


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        ds.build_utterances("dev", 3)
    with pytest.raises(ValueError, match="may only use speakers"):
        ds.build_utterances("train", 3, speakers=[ds.HELD_OUT])
    with pytest.raises(ValueError, match="strings"):
        ds.build_utterances("test", 3, strings=["12"])
