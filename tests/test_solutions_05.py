"""The exercises' solutions of chapter 05 run and assert their answers (fast mode)."""

from __future__ import annotations

import pytest

from tests._helpers import exercise_names, load_solutions

SOLUTIONS = load_solutions("05_attention_and_transformers")


@pytest.mark.parametrize("name", exercise_names(SOLUTIONS))
def test_solution(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(SOLUTIONS, name)()
