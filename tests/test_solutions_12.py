"""The exercises' solutions of chapter 12 run and assert their answers (fast mode)."""

from __future__ import annotations

import pytest

from tests._helpers import exercise_names, load_solutions

pytest.importorskip("onnxruntime")
pytest.importorskip("fastapi")
SOLUTIONS = load_solutions("12_deployment")


@pytest.mark.parametrize("name", exercise_names(SOLUTIONS))
def test_solution(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(SOLUTIONS, name)()
