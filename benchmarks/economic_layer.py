"""Economic Index layer timings (issue 12) on this machine:

1. the economic demo end to end (`clio-engine demo --economic`, 20,000 synthetic-economy records, the demo
   preset): every stage's seconds from the run's manifest, with the semantic task tree cold (built, its
   statements embedded) or warm (the shared tree cache), and the planted truths against what the run found;
2. mapping 100,000 records onto the 17,976 tasks after embedding (`map_to_tasks` with the record texts
   for the lexical part; vectors are random unit rows, since only the time is measured here — accuracy
   is `benchmarks.economic_mapping`'s job);
3. `economic_rows` on 1,000,000 records with their true tasks, and `compare_periods` on two periods of
   100,000 records (tasks, collaboration, country; 1,000 user-level bootstrap replicates).

    PYTHONPATH=. python -m benchmarks.economic_layer [--records 20000] [--map 100000] [--out DIR]
        [--output benchmarks/results/economic_layer.json]
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "economic_layer.json"


def demo_run(records: int, out: Path) -> dict:
    """The economic demo through the library (what `clio-engine demo --economic -n records` runs)."""
    from clio_engine import load_config
    from clio_engine.cli import demo_overrides
    from clio_engine.economic.demo_check import mapping_accuracy
    from clio_engine.economic.synthetic import generate_economy
    from clio_engine.pipeline import run

    import pyarrow.parquet as pq

    cfg = load_config("demo", {**demo_overrides(records, economic=True), "embed.progress": False})
    t0 = time.perf_counter()
    result = run(cfg, out=out)
    wall = time.perf_counter() - t0
    stages = {k: round(v["seconds"], 1) for k, v in result.manifest["run"]["stages"].items()}
    per = pq.read_table(out / "private" / "economic.parquet").to_pandas()
    ids = pq.read_table(out / "private" / "assignments.parquet", columns=["row", "id"]).to_pandas()
    per = per.merge(ids, on="row")
    truth = generate_economy(records, seed=cfg.seed).set_index("id").loc[per["id"], "task"].to_numpy()
    facts = result.manifest["stages"]["economic"]
    return {"wall_s": round(wall, 1), "stages": stages, "accuracy": mapping_accuracy(truth, per.task.to_numpy()),
            "aui_fit": facts.get("country", {}).get("aui_gdp_fit"), "concentration": facts.get("concentration"),
            "automation_share": facts.get("automation_share"), "published_tasks": facts["onet_task"]["published"]}


def map_timing(n: int) -> dict:
    import inspect

    from clio_engine.economic.mapping import map_to_tasks
    from clio_engine.economic.onet import load_taxonomy
    from clio_engine.economic.synthetic import generate_economy
    from clio_engine.economic.task_tree import build_task_tree

    t0 = time.perf_counter()
    tree = build_task_tree(load_taxonomy(), embed_options={"model": "default", "progress": False})
    tree_s = time.perf_counter() - t0
    texts = generate_economy(n, seed=7).text.tolist()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, tree.vectors.shape[1])).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kwargs = {"texts": texts} if "texts" in inspect.signature(map_to_tasks).parameters else {}
    t0 = time.perf_counter()
    m = map_to_tasks(vectors, tree, **kwargs)
    seconds = time.perf_counter() - t0
    return {"records": n, "seconds": round(seconds, 1), "tree_load_or_build_s": round(tree_s, 1),
            "lexical": bool(kwargs), "mapped": int((m.task >= 0).sum())}


def aggregate_timing() -> dict:
    from clio_engine.economic.aggregates import economic_rows
    from clio_engine.economic.compare import compare_periods
    from clio_engine.economic.geography import population_table
    from clio_engine.economic.onet import load_taxonomy
    from clio_engine.economic.synthetic import generate_economy

    frame = generate_economy(1_000_000, seed=11)
    records = pd.DataFrame({"user": pd.factorize(frame.user_id)[0], "task": frame.task,
                            "collaboration": frame.collaboration, "country": frame.country})
    population, denominator = population_table(None)
    t0 = time.perf_counter()
    economic_rows(records, load_taxonomy(), min_users=5, min_records=15, population=population,
                  geography_columns=["country"], denominator=denominator)
    rows_s = time.perf_counter() - t0
    a = records.iloc[:100_000]
    b = records.iloc[100_000:200_000]
    t0 = time.perf_counter()
    compare_periods(a, b, dimensions=["task", "collaboration", "country"], min_users=5, min_records=15, n_boot=1000)
    compare_s = time.perf_counter() - t0
    return {"economic_rows_1M_s": round(rows_s, 1), "compare_2x100k_s": round(compare_s, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--map", type=int, default=100_000)
    ap.add_argument("--out", help="run directory of the demo (default: a temporary folder, removed)")
    ap.add_argument("--output", default=str(RESULTS))
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="economic_demo_")) / "run"
    report = {"date": date.today().isoformat(), "machine": platform.processor() or platform.machine(),
              "command": "PYTHONPATH=. python -m benchmarks.economic_layer " + " ".join(argv or [])}
    report["demo"] = demo_run(args.records, out)
    report["map"] = map_timing(args.map)
    report["aggregates"] = aggregate_timing()
    if not args.out:
        shutil.rmtree(out.parent, ignore_errors=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=2))
    d = report["demo"]
    print(f"| demo --economic, {args.records:,} records | wall {d['wall_s']} s |")
    for stage, s in d["stages"].items():
        print(f"|   {stage} | {s} s |")
    print(f"| mapping accuracy (major / occupation / task) | {d['accuracy']} |")
    print(f"| map {args.map:,} records after embedding | {report['map']['seconds']} s (lexical: {report['map']['lexical']}) |")
    print(f"| economic_rows, 1M records | {report['aggregates']['economic_rows_1M_s']} s |")
    print(f"| compare, 2 × 100k records, 1000 replicates | {report['aggregates']['compare_2x100k_s']} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
