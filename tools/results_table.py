"""Print the full-mode headline numbers of every chapter (results/*.json) as a markdown table.

The spread column is the seed-to-seed spread a chapter recorded (max - min over >= 3 seeds,
``Results.record(..., spread=...)``); the margin is how far the value clears its target.
Only published chapters (a built ``notebooks/NN_name.ipynb``) are listed.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rows(root: Path = ROOT) -> list[str]:
    out = ["| chapter | metric | full-mode value | target | margin | seed spread |",
           "| --- | --- | --- | --- | --- | --- |"]
    for path in sorted((root / "results").glob("[0-9][0-9]_*.json")):
        if not (root / "notebooks" / f"{path.stem}.ipynb").is_file():
            continue  # a draft's results (notebooks/drafts/) are its last try, not a published number
        for e in json.loads(path.read_text()):
            if e["mode"] != "full" or e["target"] is None:
                continue
            hib = e.get("higher_is_better", True)
            sign = ">=" if hib else "<="
            margin = (e["value"] - e["target"]) if hib else (e["target"] - e["value"])
            spread = "" if e.get("spread") is None else f"{e['spread']:.3g}"
            out.append(f"| {path.stem} | `{e['metric']}` | {e['value']:.4g} | {sign} {e['target']:g} "
                       f"| {margin:.3g} | {spread} |")
    return out


def main() -> None:
    print("\n".join(rows()))


if __name__ == "__main__":
    main()
