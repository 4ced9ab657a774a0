"""Run every exercise_* of notebooks/solutions/02_deep_learning_basics.py (each asserts its answer)."""

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[1] / "notebooks" / "solutions" / "02_deep_learning_basics.py"


def _load():
    spec = importlib.util.spec_from_file_location("solutions_02", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOLUTIONS = _load()
NAMES = sorted(n for n in dir(SOLUTIONS) if n.startswith("exercise_"))


def test_there_are_exercises():
    assert len(NAMES) >= 2


@pytest.mark.parametrize("name", NAMES)
def test_exercise(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(SOLUTIONS, name)()
