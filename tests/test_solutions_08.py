"""The exercises' solutions of chapter 08 run and assert their answers (fast mode)."""

from __future__ import annotations

import pytest

from tests._helpers import exercise_names, load_solutions, shared_datasets

SOLUTIONS = load_solutions("08_fine_tuning")


@pytest.mark.parametrize("name", exercise_names(SOLUTIONS))
def test_solution(name, monkeypatch):
    shared_datasets()
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(SOLUTIONS, name)()
