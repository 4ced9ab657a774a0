"""Chapter 09's posts: the pairing recipe, the splits, the emoji files, the fusion models' missing pictures."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from mmcourse.data.posts import (
    LABELS,
    Recipe,
    bayes_posterior,
    draw_emoji,
    emoji_ranking,
    normalise,
    posts,
    split_of,
    tweets,
)
from mmcourse.data.registry import REGISTRY, ChecksumError, DataNotFoundError, fetch, read_verified
from mmcourse.models.sentiment import FUSIONS, EmojiCNN, PostClassifier, TextGRU
from tests._helpers import serve, shared_datasets

COMBINED = "749d6003866958fbb3b4cb9b661ff996a235dad108e79183728a9e6c5844cfde"  # shared/datasets/README.md


def test_ranking_is_the_published_table_over_the_noto_emojis():
    r = emoji_ranking()
    assert len(r.codes) == 756 == len(REGISTRY["noto-emoji"].files)
    i = r.index("😂")
    assert r.codes[i] == "1f602" and r.counts[i].tolist() == [3614.0, 4163.0, 6845.0]  # the CSV's row
    assert r.index("2764") == r.index("❤")
    lik = r.likelihood  # [3, E]
    assert lik.shape == (3, 756) and torch.allclose(lik.sum(1), torch.ones(3, dtype=lik.dtype))
    with pytest.raises(ValueError, match="not one of the 756"):
        r.index("dog")


def _chi2(draws: torch.Tensor, probs: torch.Tensor) -> float:
    """Chi-square p-value of emoji ``draws`` against ``probs [E]``, rare emojis pooled (expected >= 5)."""
    n = len(draws)
    counts = torch.bincount(draws, minlength=len(probs)).double()
    common = probs * n >= 5
    obs = torch.cat([counts[common], counts[~common].sum(0, keepdim=True)]).numpy()
    exp = torch.cat([probs[common], probs[~common].sum(0, keepdim=True)]).numpy() * n
    return float(chisquare(obs, exp).pvalue)


def test_pairing_follows_p_emoji_given_sentiment_and_is_deterministic():
    n = 30_000
    keys = [f"post {i}" for i in range(n)]
    lik = emoji_ranking().likelihood
    recipe = Recipe(missing=0.0)
    for s in range(3):
        draws = draw_emoji(keys, torch.full((n,), s), recipe)
        assert (draws >= 0).all()
        assert _chi2(draws, lik[s]) > 1e-3  # agrees with P(emoji | s) ...
        assert _chi2(draws, lik[(s + 1) % 3]) < 1e-12  # ... and not with another class's distribution
    again = draw_emoji(keys[:500], torch.zeros(500, dtype=torch.long), recipe)
    assert torch.equal(again, draw_emoji(keys[:500], torch.zeros(500, dtype=torch.long), recipe))
    other = draw_emoji(keys[:500], torch.zeros(500, dtype=torch.long), Recipe(seed=1, missing=0.0))
    assert (other != again).float().mean() > 0.5  # the seed changes the draw


def test_missing_share_matches_the_recipe():
    n = 20_000
    draws = draw_emoji([f"k{i}" for i in range(n)], torch.zeros(n, dtype=torch.long), Recipe(missing=0.3))
    share = float((draws < 0).float().mean())
    assert abs(share - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n), share  # within 4 standard errors


def test_tweets_deduplicated_and_no_text_crosses_splits():
    rows = tweets()
    keys = [k for *_, k in rows]
    assert len(keys) == len(set(keys)) == 34_903
    assert {y for _, y, _ in rows} == set(range(len(LABELS)))
    assert normalise("RT @delta: Great  flight! http://t.co/x") == normalise("great flight!")
    by_split = {s: {k for k in keys if split_of(k) == s} for s in ("train", "val", "test")}
    assert sum(map(len, by_split.values())) == len(keys)
    assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
    assert abs(len(by_split["test"]) / len(keys) - 0.2) < 0.01
    sub = posts("test", limit=300)
    assert all(split_of(normalise(t)) == "test" for t in sub.texts)  # the cleaned text keeps its split


def test_posts_are_deterministic_and_subsets_agree(tmp_path, monkeypatch):
    shared_datasets()
    monkeypatch.setenv("MMCOURSE_CACHE", str(tmp_path))
    a, b = posts("val", limit=60), posts("val", limit=120)
    assert a.keys == b.keys[:60] and torch.equal(a.emoji, b.emoji[:60])
    assert torch.equal(a.images, b.images[:60])  # a post's picture does not depend on the subset
    assert a.images.shape == (60, 3, 64, 64) and a.images.dtype == torch.uint8
    assert (a.images[~a.has_image] == 0).all() and (a.images[a.has_image].float().std((1, 2, 3)) > 5).all()
    assert 0.1 < float((~b.has_image).float().mean()) < 0.5


def test_emoji_files_verify_against_their_checksums():
    root = shared_datasets()
    contents = read_verified("noto-emoji", root)
    assert len(contents) == 756 and all(c[:8] == b"\x89PNG\r\n\x1a\n" for c in contents)
    assert REGISTRY["noto-emoji"].combined_sha256 == COMBINED


def test_emoji_files_download_from_a_loopback_mirror_and_verify(tmp_path, monkeypatch):
    """The real download path: every one of the 756 pictures comes over HTTP, is verified, renamed."""
    src = shared_datasets()
    with serve(src) as url:
        monkeypatch.setenv("MMCOURSE_MIRROR", url)
        paths = fetch("noto-emoji", root=tmp_path)
    assert len(paths) == 756 and all(p.is_file() for p in paths)
    assert paths[0].read_bytes() == (src / "noto-emoji" / paths[0].relative_to(tmp_path / "noto-emoji")).read_bytes()
    assert not list(tmp_path.rglob(".*part*"))
    assert len(read_verified("noto-emoji", tmp_path)) == 756


def test_missing_or_corrupt_emoji_file_is_named(tmp_path, monkeypatch):
    src = shared_datasets() / "noto-emoji"
    shutil.copytree(src, tmp_path / "noto-emoji")
    victim = tmp_path / "noto-emoji/png72/emoji_u1f602.png"
    victim.write_bytes(victim.read_bytes()[:-10])  # truncated
    with pytest.raises(ChecksumError, match="emoji_u1f602.png"):
        read_verified("noto-emoji", tmp_path)
    victim.unlink()
    monkeypatch.setenv("MMCOURSE_MIRROR", "http://127.0.0.1:9")  # offline: nothing listens on port 9
    with pytest.raises(DataNotFoundError, match="emoji_u1f602.png") as err:
        fetch("noto-emoji", tmp_path)
    assert "MMCOURSE_DATA" in str(err.value)


def test_bayes_posterior_multiplies_by_the_likelihood():
    lik = emoji_ranking().likelihood.T  # [E, 3]
    p = torch.tensor([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]], dtype=torch.float64)
    e = torch.tensor([emoji_ranking().index("😭"), -1])
    post = bayes_posterior(p, e)
    expect = p[0] * lik[e[0]] / (p[0] * lik[e[0]]).sum()
    assert torch.allclose(post[0], expect) and torch.equal(post[1], p[1])
    assert post[0, 0] > p[0, 0]  # the crying face is evidence for "negative"


@pytest.mark.parametrize("kind", FUSIONS)
def test_posts_without_a_picture_flow_through_every_fusion(kind):
    torch.manual_seed(0)
    m = PostClassifier(kind, text_dim=8, image_dim=6, hidden=16, picture_dropout=0.5).eval()
    text, image = torch.randn(5, 8), torch.randn(5, 6)
    has = torch.tensor([True, False, True, False, False])
    out = m({"text": text, "image": image, "has_image": has})
    assert out.shape == (5, 3) and torch.isfinite(out).all()
    other = m({"text": text, "image": torch.randn(5, 6) * 100, "has_image": has})
    assert torch.equal(out[~has], other[~has])  # no picture: the image input is never read
    if kind in ("concat", "gmu", "late", "image"):
        assert not torch.allclose(out[has], other[has])  # a picture is read
    if kind == "late":  # a missing expert is uniform: the text expert decides alone
        c = m.contributions({"text": text, "image": image, "has_image": has})
        assert torch.equal(c["image"][~has], torch.zeros(3, 3))
        assert torch.allclose(out, c["text"] + c["image"])
    m.train()
    seen = torch.stack([m._has({"has_image": torch.ones(4000, dtype=torch.bool)}) for _ in range(1)]).float().mean()
    assert abs(float(seen) - 0.5) < 0.05  # modality dropout hides about half the pictures in training


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="fusion must be one of"):
        PostClassifier("sum")
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        EmojiCNN()(torch.zeros(2, 64, 64))
    with pytest.raises(ValueError, match="split must be one of"):
        posts("dev")
    out = TextGRU(50)({"ids": torch.randint(1, 50, (4, 7)), "lengths": torch.tensor([7, 3, 1, 5])})
    assert out.shape == (4, 3)
