"""Run every exercise_* of notebooks/solutions/02_deep_learning_basics.py (each asserts its answer)."""


import pytest

from tests._helpers import exercise_names, load_solutions

SOLUTIONS = load_solutions("02_deep_learning_basics")
NAMES = exercise_names(SOLUTIONS)


def test_there_are_exercises():
    assert len(NAMES) >= 2


@pytest.mark.parametrize("name", NAMES)
def test_exercise(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(SOLUTIONS, name)()
