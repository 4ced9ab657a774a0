"""One registry of the course's datasets: files, canonical URLs, SHA-256 checksums.

Every file is looked up under :func:`mmcourse.config.data_dir` (``$MMCOURSE_DATA`` first).
A missing file is downloaded from its canonical source to a temporary file, verified,
then renamed into place, so an interrupted download never leaves a broken file behind.
``$MMCOURSE_MIRROR`` replaces every canonical URL by ``<mirror>/<relative path>`` (the
tests serve a local copy of the data over a loopback HTTP server this way).

Checksums of ``.gz`` files are of the *decompressed* bytes: distributions re-wrap the
same data in different gzip headers (Debian's Fashion-MNIST does), the bytes inside are
what matter.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from mmcourse.config import data_dir
from mmcourse.data.noto_emoji import (
    NOTO_EMOJI_COMBINED_SHA256,
    NOTO_EMOJI_SHA256,
    NOTO_EMOJI_VERSION,
)


class DataError(RuntimeError):
    """Base class for the data errors below."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset file is missing and could not be downloaded."""


class ChecksumError(DataError):
    """A dataset file exists but its bytes are not the published ones."""


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: its files (paths relative to the data dir), where they come from, checksums.

    ``sha256`` maps each file to its checksum. ``combined_sha256`` is used instead when
    the publisher gives one checksum for all files concatenated in sorted name order.
    """

    name: str
    files: tuple[str, ...]
    urls: tuple[str, ...]
    sha256: tuple[str, ...] | None = None
    combined_sha256: str | None = None
    source: str = ""
    licence: str = ""

    def url_for(self, i: int) -> str:
        mirror = os.environ.get("MMCOURSE_MIRROR")
        return f"{mirror.rstrip('/')}/{self.files[i]}" if mirror else self.urls[i]


_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FSDD = "https://raw.githubusercontent.com/Jakobovski/free-spoken-digit-dataset/v1.0.10/recordings/"
FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
_FSDD_FILES = tuple(
    sorted(f"{d}_{s}_{i}.wav" for d in range(10) for s in FSDD_SPEAKERS for i in range(50))
)
_NOTO = f"https://raw.githubusercontent.com/googlefonts/noto-emoji/{NOTO_EMOJI_VERSION}/png/72/"
_NOTO_FILES = tuple(f"emoji_u{code}.png" for code in sorted(NOTO_EMOJI_SHA256))

REGISTRY: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        files=("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"),
        urls=(_MNIST + "t10k-images-idx3-ubyte.gz", _MNIST + "t10k-labels-idx1-ubyte.gz"),
        sha256=(
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
        source="MNIST test set (LeCun, Cortes, Burges), as mirrored for torchvision",
        licence="CC BY-SA 3.0",
    ),
    "fashion-mnist": DatasetInfo(
        name="fashion-mnist",
        files=tuple(
            f"fashion-mnist/{n}"
            for n in (
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
            )
        ),
        urls=tuple(
            _FASHION + n
            for n in (
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz",
                "t10k-labels-idx1-ubyte.gz",
            )
        ),
        sha256=(
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
        source="github.com/zalandoresearch/fashion-mnist (data/fashion/)",
        licence="MIT",
    ),
    "fsdd": DatasetInfo(
        name="fsdd",
        files=tuple(f"fsdd/recordings/{n}" for n in _FSDD_FILES),
        urls=tuple(_FSDD + n for n in _FSDD_FILES),
        combined_sha256="ddb17656a0bca4c5ddace082be188ca630516dc2ef1110afe3c4e9cc71173de4",
        source="Free Spoken Digit Dataset v1.0.10, github.com/Jakobovski/free-spoken-digit-dataset",
        licence="CC BY-SA 4.0",
    ),
    "noto-emoji": DatasetInfo(
        name="noto-emoji",
        files=tuple(f"noto-emoji/png72/{n}" for n in _NOTO_FILES),
        urls=tuple(_NOTO + n for n in _NOTO_FILES),
        sha256=tuple(NOTO_EMOJI_SHA256[code] for code in sorted(NOTO_EMOJI_SHA256)),
        combined_sha256=NOTO_EMOJI_COMBINED_SHA256,
        source=f"Noto Color Emoji {NOTO_EMOJI_VERSION}, github.com/googlefonts/noto-emoji (png/72/)",
        licence="Apache 2.0 (images)",
    ),
    "tinyshakespeare": DatasetInfo(
        name="tinyshakespeare",
        files=("tinyshakespeare/input.txt",),
        urls=("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",),
        sha256=("86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",),
        source="github.com/karpathy/char-rnn (data/tinyshakespeare/input.txt)",
        licence="public domain text",
    ),
}


def _content(path: Path, name: str | None = None) -> bytes:
    """The file's bytes, decompressed when its name (``name`` or ``path.name``) ends in ``.gz``."""
    raw = path.read_bytes()
    if (name or path.name).endswith(".gz"):
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ChecksumError(
                f"{path} is not a valid gzip file ({err}). Delete it and run again to "
                "download a fresh copy."
            ) from err
    return raw


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(url: str, dest: Path, expected: str | None, name: str, timeout: float = 60) -> None:
    """Download ``url`` to a temporary file next to ``dest``, check it, rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as f:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
        if expected is not None and _sha(_content(tmp, dest.name)) != expected:
            raise ChecksumError(
                f"Downloaded {url} for dataset '{name}' but its SHA-256 is not the published "
                f"one ({expected}). The source may have changed or the transfer was damaged; "
                "try again, or copy a verified file to " + str(dest)
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _missing_error(info: DatasetInfo, root: Path, path: Path, url: str, err: Exception) -> DataNotFoundError:
    folder = info.files[0].split("/")[0]
    return DataNotFoundError(
        f"Dataset '{info.name}': file {path} is missing and the download from {url} failed "
        f"({err}).\nFix it in one of two ways:\n"
        "  1. connect to the internet and run again: the course downloads and verifies it;\n"
        f"  2. copy the folder '{folder}/' of a machine that has it into {root}, or set "
        "MMCOURSE_DATA to a folder that has it (e.g. MMCOURSE_DATA=../shared/datasets)."
    )


def fetch(name: str, root: Path | None = None, download: bool = True) -> list[Path]:
    """Make sure every file of dataset ``name`` is present; return their paths.

    Missing files are downloaded (verified, then renamed into place). Files already
    present are verified when they are read (:func:`read_verified`).
    """
    if name not in REGISTRY:
        raise KeyError(f"Unknown dataset {name!r}; known: {sorted(REGISTRY)}")
    info = REGISTRY[name]
    root = Path(root) if root is not None else data_dir()
    paths = [root / f for f in info.files]
    missing = [i for i, p in enumerate(paths) if not p.is_file()]
    if not missing:
        return paths
    if not download:
        i = missing[0]
        raise _missing_error(info, root, paths[i], info.url_for(i), RuntimeError("download=False"))

    def get(i: int) -> None:
        expected = info.sha256[i] if info.sha256 else None
        try:
            _download(info.url_for(i), paths[i], expected, name)
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            if isinstance(err, ChecksumError):
                raise
            raise _missing_error(info, root, paths[i], info.url_for(i), err) from err

    with ThreadPoolExecutor(max_workers=min(16, len(missing))) as pool:
        list(pool.map(get, missing))
    if info.combined_sha256:
        verify_combined(info, paths)
    return paths


def read_verified(name: str, root: Path | None = None) -> list[bytes]:
    """Fetch dataset ``name`` and return each file's (decompressed) bytes, checksums verified."""
    info = REGISTRY[name]
    paths = fetch(name, root)
    contents = [_content(p) for p in paths]
    if info.sha256:
        for p, data, expected in zip(paths, contents, info.sha256, strict=True):
            if _sha(data) != expected:
                raise ChecksumError(
                    f"Dataset '{name}': {p} is corrupt (SHA-256 {_sha(data)[:16]}…, expected "
                    f"{expected[:16]}…). Delete the file and run again to download it afresh."
                )
    if info.combined_sha256:
        _check_combined(info, paths, contents)
    return contents


def verify_combined(info: DatasetInfo, paths: Iterable[Path]) -> None:
    paths = list(paths)
    _check_combined(info, paths, [p.read_bytes() for p in paths])


def _check_combined(info: DatasetInfo, paths: list[Path], contents: list[bytes]) -> None:
    h = hashlib.sha256()
    for _, data in sorted(zip(paths, contents, strict=True), key=lambda pc: pc[0].name):
        h.update(data)
    if h.hexdigest() != info.combined_sha256:
        # Find the culprit cheaply: a wrong size or a file that will not parse is the usual case.
        raise ChecksumError(
            f"Dataset '{info.name}': the {len(paths)} files under {paths[0].parent} do not match "
            "the published checksum (one or more is corrupt or was edited). Delete the folder "
            "and run again to download it afresh, or copy a verified copy there."
        )
