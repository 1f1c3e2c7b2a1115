"""The explorer map on the demo (issue 10, item 4): do the top-level clusters form regions, and what does
the map stage cost next to embedding?

Runs `clio-engine demo` (20k synthetic records, 800 base clusters) into a fresh run directory with a
fresh embedding cache (so the embed stage is a cold one), or measures an existing run directory, then
prints, from the run's own files:

- kNN agreement: over the published points of explorer.html, the share of each point's 15 nearest map
  neighbours in the same top-level cluster, averaged (1.0 = every top-level cluster its own region);
- map seconds and embed seconds (manifest `run.stages.*.seconds`), and their ratio;
- points, points per published cluster and the layout method.

    PYTHONPATH=. python -m benchmarks.map_quality [--records 20000] [--out DIR] [--cache-dir DIR]
    PYTHONPATH=. python -m benchmarks.map_quality --run-dir runs/demo     # measure a finished run
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from clio_engine.explorer.page import page_data


def page_points(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(xy [n, 2], top-level page node of each point) parsed from the run's explorer.html."""
    html = (run_dir / "explorer.html").read_text(encoding="utf-8")
    data = page_data(html)
    parent, pts = data["nodes"]["parent"], data["points"]
    top = []
    for j in pts["node"]:
        while parent[j] >= 0:
            j = parent[j]
        top.append(j)
    return np.stack([pts["x"], pts["y"]], axis=1).astype(np.float64), np.asarray(top)


def measure(run_dir: Path, k: int = 15) -> dict:
    from clio_engine.explorer.layout import knn_agreement

    manifest = json.loads((run_dir / "manifest.json").read_text())
    timing = manifest.get("run", {}).get("stages", {})
    xy, top = page_points(run_dir)
    seconds = {s: timing.get(s, {}).get("seconds") for s in ("embed", "map")}
    info = manifest["stages"].get("map", {})
    return {"run_dir": str(run_dir), "records": manifest["input"]["accepted"], "levels": manifest.get("levels"),
            "points": int(len(xy)), "per_cluster": info.get("per_cluster"), "method": info.get("method"),
            "knn_agreement": round(knn_agreement(xy, top, k=k), 4), "k": k, "top_level_regions": int(len(set(top))),
            "embed_s": seconds["embed"], "map_s": seconds["map"],
            "embed_reused": timing.get("embed", {}).get("reused"),
            "map_over_embed": round(seconds["map"] / seconds["embed"], 4) if seconds["embed"] else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", type=Path, help="measure this finished run instead of running the demo")
    ap.add_argument("--records", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="run directory for the demo (default: a temp dir)")
    ap.add_argument("--cache-dir", type=Path, default=None, help="embedding cache (default: a fresh temp dir)")
    ap.add_argument("--k", type=int, default=15)
    args = ap.parse_args(argv)
    run_dir = args.run_dir
    if run_dir is None:
        from clio_engine.cli import main as cli

        tmp = Path(tempfile.mkdtemp(prefix="map_quality_"))
        run_dir = args.out or tmp / "run"
        cmd = ["demo", "--out", str(run_dir), "--cache-dir", str(args.cache_dir or tmp / "cache"), "--no-progress"]
        if args.records:
            cmd += ["--records", str(args.records)]
        if cli(cmd) != 0:
            return 1
    result = measure(run_dir, k=args.k)
    for key, value in result.items():
        print(f"{key:>18s}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
