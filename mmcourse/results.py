"""Record a chapter's headline numbers, and assert its targets.

Each chapter calls :func:`record` for its measured numbers; they land in
``results/<chapter>.json`` as a list of ``{"metric", "value", "target",
"higher_is_better", "mode", "seed"}``. The chapter's last cell calls
:func:`check_targets`, which fails (and so fails nbval in CI) when any target of
the current mode is missed.

>>> rec = Results("03_convolutions")
>>> rec.record("mnist_cnn_test_acc", 0.991, target=pick(fast=0.9, full=0.985))
>>> rec.check_targets()
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from mmcourse.config import mode, results_dir


class TargetMissed(AssertionError):
    """A recorded number missed its target."""


class Results:
    """The results file of one chapter (``name`` is the notebook's stem)."""

    def __init__(self, name: str, directory: Path | None = None):
        self.name = name
        self.path = Path(directory or results_dir()) / f"{name}.json"
        self.current: list[dict] = []  # what this run recorded

    def load(self) -> list[dict]:
        if not self.path.is_file():
            return []
        try:
            return json.loads(self.path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.path} is not valid JSON ({err}); delete it and rerun") from err

    def record(self, metric: str, value: float, target: float | None = None,
               higher_is_better: bool = True, seed: int | None = 0) -> dict:
        """Store one number of the current mode (replacing the same metric of this mode)."""
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{metric} is {value}: training diverged?")
        entry = {
            "metric": metric, "value": round(value, 6),
            "target": None if target is None else float(target),
            "higher_is_better": bool(higher_is_better), "mode": mode(), "seed": seed,
        }  # fmt: skip
        self.current = [e for e in self.current if e["metric"] != metric] + [entry]
        rows = [e for e in self.load() if not (e["metric"] == metric and e["mode"] == entry["mode"])]
        rows.append(entry)
        rows.sort(key=lambda e: (e["mode"], e["metric"]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(rows, indent=1) + "\n")
        os.replace(tmp, self.path)
        return entry

    def missed(self) -> list[dict]:
        """Entries recorded in this run whose value misses the target."""
        out = []
        for e in self.current:
            t = e["target"]
            if t is not None and (e["value"] < t if e["higher_is_better"] else e["value"] > t):
                out.append(e)
        return out

    def check_targets(self) -> str:
        """Raise :class:`TargetMissed` if any target of this run is missed; else a summary table."""
        if not self.current:
            raise TargetMissed(f"{self.name}: nothing was recorded in this run")
        lines = [f"{'metric':<40} {'value':>9} {'target':>9}  ok   ({mode()} mode)"]
        for e in self.current:
            t = e["target"]
            ok = e not in self.missed()
            sign = ">=" if e["higher_is_better"] else "<="
            tt = "" if t is None else f"{sign}{t:g}"
            lines.append(f"{e['metric']:<40} {e['value']:>9.4f} {tt:>9}  {'yes' if ok else 'NO'}")
        table = "\n".join(lines)
        if self.missed():
            raise TargetMissed(f"targets missed in {self.name}:\n{table}")
        return table
