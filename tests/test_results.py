"""results.record / check_targets: the mechanism every chapter's checks cell relies on."""

from __future__ import annotations

import json

import pytest

from mmcourse.results import Results, TargetMissed


def test_record_writes_one_row_per_metric_and_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCOURSE_FAST", "1")
    r = Results("99_test", tmp_path)
    r.record("acc", 0.91, target=0.9)
    r.record("acc", 0.95, target=0.9)  # replaces
    r.record("loss", 0.3, target=0.5, higher_is_better=False)
    monkeypatch.setenv("MMCOURSE_FAST", "0")
    Results("99_test", tmp_path).record("acc", 0.99, target=0.98, seed=1)
    rows = json.loads((tmp_path / "99_test.json").read_text())
    assert {(e["metric"], e["mode"]) for e in rows} == {("acc", "fast"), ("loss", "fast"), ("acc", "full")}
    fast_acc = next(e for e in rows if e["metric"] == "acc" and e["mode"] == "fast")
    assert fast_acc == {"metric": "acc", "value": 0.95, "target": 0.9, "higher_is_better": True,
                        "mode": "fast", "seed": 0}
    assert "acc" in r.check_targets()


def test_missed_targets_fail(tmp_path):
    r = Results("99_test", tmp_path)
    with pytest.raises(TargetMissed, match="nothing was recorded"):
        r.check_targets()
    r.record("acc", 0.5, target=0.9)
    r.record("loss", 0.7, target=0.5, higher_is_better=False)
    with pytest.raises(TargetMissed) as err:
        r.check_targets()
    assert len(r.missed()) == 2 and "NO" in str(err.value)
    with pytest.raises(ValueError, match="diverged"):
        r.record("acc", float("nan"))
