"""MMCOURSE_SEED: a chapter's checks still hold when every training seed is shifted.

Runs chapter 00 (set-up and tour: it trains an image+audio model) from its source in fast mode
with MMCOURSE_SEED=1; any failed assertion or missed target raises here. About 30 s on one thread.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mmcourse.config import offset_seed, seed_everything, seed_offset

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "00_setup_and_tour"


def _nbtool():
    spec = importlib.util.spec_from_file_location("_tool_notebooks", ROOT / "tools" / "notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_offset_is_added_to_every_seed(monkeypatch):
    import torch

    monkeypatch.delenv("MMCOURSE_SEED", raising=False)
    assert seed_offset() == 0 and offset_seed(5) == 5
    a = (seed_everything(0), torch.rand(3))
    monkeypatch.setenv("MMCOURSE_SEED", "1")
    assert seed_offset() == 1 and offset_seed(5) == 6
    b = (seed_everything(0), torch.rand(3))
    monkeypatch.setenv("MMCOURSE_SEED", "0")
    c = (seed_everything(1), torch.rand(3))
    assert a[0] == 0 and b[0] == c[0] == 1 and torch.equal(b[1], c[1]) and not torch.equal(a[1], b[1])
    monkeypatch.setenv("MMCOURSE_SEED", "one")
    with pytest.raises(ValueError, match="MMCOURSE_SEED must be an integer"):
        seed_everything(0)


def test_chapter_checks_hold_with_another_seed(tmp_path, monkeypatch):
    tool = _nbtool()
    nb = tool.from_source(ROOT / "notebooks" / "src" / f"{CHAPTER}.py")
    monkeypatch.setenv("MMCOURSE_SEED", "1")
    monkeypatch.setenv("MMCOURSE_RESULTS", str(tmp_path))  # leave results/ alone
    tool.execute(nb, fast=True, timeout=300)  # raises CellExecutionError on any failed check
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "MMCOURSE_SEED=1" in outputs  # describe() in the kernel saw the offset
    assert "(fast mode)" in outputs  # the checks cell ran
    rows = json.loads((tmp_path / f"{CHAPTER}.json").read_text())
    assert rows and all(r["mode"] == "fast" and r["seed"] in (None, 1) for r in rows)
