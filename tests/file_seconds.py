"""Seconds per test file from pytest's `--durations=0` report (setup, call and teardown summed), as JSON, for
the conftest's longest-files-first ordering:  python -m tests.file_seconds CI_LOG > tests/file_seconds.json"""
from __future__ import annotations

import json
import re
import sys
from collections import defaultdict

LINE = re.compile(r"^\s*([0-9.]+)s (?:setup|call|teardown)\s+(tests/[^:\s]+\.py)::")


def file_seconds(lines) -> dict[str, float]:
    """{test file: seconds} from the lines of a --durations=0 report, longest first."""
    total: dict[str, float] = defaultdict(float)
    for line in lines:
        if m := LINE.match(line):
            total[m.group(2)] += float(m.group(1))
    return {name: round(t, 1) for name, t in sorted(total.items(), key=lambda kv: -kv[1])}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
        json.dump(file_seconds(log), sys.stdout, indent=0)
    print()
