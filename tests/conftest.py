"""Shared fixtures (small on purpose: helpers live in tests/_helpers.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``artifacts/`` (git-ignored): screenshots and other test artefacts worth keeping."""
    path = ROOT / "artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium executable plus Playwright's Python package.

    Locally the browser tests skip (with the reason) when either is missing; under CI
    (``CI`` set) they fail instead, so a CI machine without Chromium cannot pass silently.
    """
    exe = os.environ.get("MMCOURSE_CHROMIUM") or next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))), None
    )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe, why = None, "Playwright's Python package is not installed (pip install playwright)"
    else:
        why = "Chromium is not installed (apt-get install chromium, or set MMCOURSE_CHROMIUM)"
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {why}")
        pytest.skip(why)
    return exe
