"""Print the full-mode headline numbers of every chapter (results/*.json) as a markdown table."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    print("| chapter | metric | full-mode value | target |\n| --- | --- | --- | --- |")
    for path in sorted((ROOT / "results").glob("[0-9][0-9]_*.json")):
        for e in json.loads(path.read_text()):
            if e["mode"] != "full" or e["target"] is None:
                continue
            sign = ">=" if e["higher_is_better"] else "<="
            print(f"| {path.stem} | `{e['metric']}` | {e['value']:.4g} | {sign} {e['target']:g} |")


if __name__ == "__main__":
    main()
