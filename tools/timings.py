"""Per-notebook and per-test-file wall time from the junit XML that `make test` writes.

    python tools/timings.py artifacts/junit.xml
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import defaultdict


def main(path: str) -> None:
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("classname") or case.get("file") or "?"
        totals[name.split("::")[0]] += float(case.get("time", 0))
    for name, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{sec:8.1f} s  {name}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "artifacts/junit.xml")
