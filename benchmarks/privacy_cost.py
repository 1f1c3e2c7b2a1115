"""What privacy costs (issue 10): records left in published cells under secondary suppression, and the
error user-level noise puts into published shares, on the demo and on hwu64.

Each dataset is run once through the pipeline without noise (the default model, so clusters are the real
ones); then the privacy decisions are re-taken on that run's hierarchy with the same functions the
`privacy` and `aggregate` stages call, for every ε and seed:

- secondary suppression (no ε): share of clustered records in published nodes per level, and of facet-cell
  records in shown cells, with primary suppression only and after the complementary rule;
- noise (ε total per run, `privacy.max_records_per_user` = 5): share of records in published base clusters;
  median relative error of published cluster shares (every level) and of shown facet-cell shares against the
  exact, unbounded shares of the same cluster or cell; median over seeds.

hwu64 has no users: each record gets a synthetic user id (a seeded Zipf draw over 2,000 users, so some
users write hundreds of records), and its `scenario` column is the facet.

    PYTHONPATH=. python -m benchmarks.privacy_cost [--records 20000] [--seeds 10] [--epsilons 1 4 16 64]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from clio_engine.aggregate.facets import facet_cells_tree
from clio_engine.privacy import publish
from clio_engine.privacy.noise import plan_noise

DATA = Path(os.environ.get("CLIO_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
FLOORS = dict(min_users=5, min_records=15)
BOUND = 5


def demo_frame(n: int) -> tuple[pd.DataFrame, dict]:
    from clio_engine import generate_conversations

    frame = generate_conversations(n, seed=0)[["id", "text", "user_id", "language", "country"]]
    return frame, {"input.user_column": "user_id", "input.facet_columns": ["language", "country"],
                   "cluster.target_cluster_size": 25}


def hwu64_frame(n_users: int = 2000) -> tuple[pd.DataFrame, dict]:
    frame = pd.read_csv(DATA / "hwu64.csv.gz")[["text", "scenario"]].dropna()
    rng = np.random.default_rng(0)
    activity = 1.0 / np.arange(1, n_users + 1)  # Zipf: user 1 writes ~8% of all records
    frame["user_id"] = [f"u{u}" for u in rng.choice(n_users, len(frame), p=activity / activity.sum())]
    frame["id"] = [f"h{i}" for i in range(len(frame))]
    return frame, {"input.user_column": "user_id", "input.facet_columns": ["scenario"]}


def run_once(frame: pd.DataFrame, overrides: dict, out: Path):
    """One pipeline run without noise → (labels per level, parents per level, user codes, facets, seconds)."""
    from clio_engine.pipeline import run

    start = time.perf_counter()
    result = run(None, input=frame, out=out, overrides={"embed.progress": False, **overrides})
    seconds = time.perf_counter() - start
    a = result.assignments.set_index("id").loc[frame["id"]]
    n_levels = len(result.manifest["levels"])
    labels = [a[f"level_{l}"].fillna(-1).to_numpy(np.int64) for l in range(n_levels)]
    nodes = result.clusters[result.clusters.kind == "cluster"]
    index = {r.id: int(r.index) for r in nodes.itertuples(index=False)}
    parents = []
    for level in range(n_levels):
        rows = nodes[nodes.level == level].sort_values("index")
        parents.append(np.array([index[p] if isinstance(p, str) and p in index else -1 for p in rows.parent], np.int64))
    users = pd.factorize(frame["user_id"])[0].astype(np.int64)
    facets = {f: frame[f].to_numpy(object) for f in overrides["input.facet_columns"]}
    return labels, parents, users, facets, seconds


def exact_shares(labels, n_nodes) -> list[np.ndarray]:
    total = max(int((labels[0] >= 0).sum()), 1)
    return [np.bincount(lab[lab >= 0], minlength=n) / total for lab, n in zip(labels, n_nodes)]


def exact_cell_shares(labels, values) -> dict[tuple[int, int, str], float]:
    """(level, node, value) → the cell's exact share of its node."""
    out = {}
    for level, lab in enumerate(labels):
        frame = pd.DataFrame({"node": lab, "value": pd.Series(values).astype(str)})
        frame = frame[frame.node >= 0]
        counts = frame.groupby(["node", "value"]).size()
        sizes = frame.groupby("node").size()
        for (node, value), c in counts.items():
            out[(level, int(node), value)] = c / sizes[node]
    return out


def secondary_cost(labels, parents, users, facets) -> dict:
    clustered = max(int((labels[0] >= 0).sum()), 1)
    pubs = {s: publish(labels, parents, users, **FLOORS, secondary=s) for s in (False, True)}
    levels = [{"primary": float(pubs[False][l].records[pubs[False][l].published].sum() / clustered),
               "secondary": float(pubs[True][l].records[pubs[True][l].published].sum() / clustered)}
              for l in range(len(labels))]
    cells = {}
    for s in (False, True):
        before = after = total = 0
        for name, values in facets.items():
            for c in facet_cells_tree(labels, [p.published for p in pubs[True]], parents, values, users, facet=name,
                                      **FLOORS, secondary=s):
                total += int(c.records.sum())
                after += int(c.records[c.shown].sum())
        cells[s] = after / max(total, 1)
    return {"levels": levels, "facet_cells": {"primary": cells[False], "secondary": cells[True]}}


def noise_cost(labels, parents, users, facets, epsilons, seeds) -> list[dict]:
    n_nodes = [len(p) for p in parents]
    exact = exact_shares(labels, n_nodes)
    cell_exact = {name: exact_cell_shares(labels, values) for name, values in facets.items()}
    clustered = max(int((labels[0] >= 0).sum()), 1)
    rows = []
    for eps in epsilons:
        # the runs derive k from the record count, so under ε that count is a query of the budget too
        plan = plan_noise(eps, BOUND, n_levels=len(labels), facets=tuple(facets), has_user_ids=True, k_from_count=True)
        published_share, cluster_err, cell_err, published_nodes = [], [], [], []
        for seed in range(seeds):
            pubs = publish(labels, parents, users, **FLOORS, noise=plan, seed=seed)
            total = max(int(pubs[-1].reported_records.sum()), 1)
            published_share.append(float(np.bincount(labels[0][labels[0] >= 0], minlength=n_nodes[0])[
                pubs[0].published].sum() / clustered))
            published_nodes.append(int(sum(p.published.sum() for p in pubs)))
            errs = []
            for level, p in enumerate(pubs):
                on = p.published
                noisy = p.reported_records[on] / total
                errs.append(np.abs(noisy - exact[level][on]) / exact[level][on])
            cluster_err.append(float(np.median(np.concatenate(errs))) if any(len(e) for e in errs) else np.nan)
            cerrs = []
            for name, values in facets.items():
                cells = facet_cells_tree(labels, [p.published for p in pubs], parents, values, users, facet=name,
                                         **FLOORS, noise=plan, seed=seed, node_sizes=[p.reported_records for p in pubs])
                for level, c in enumerate(cells):
                    size = np.maximum(c.node_sizes[c.node], 1)
                    for i in np.flatnonzero(c.shown):
                        truth = cell_exact[name][(level, int(c.node[i]), str(c.names[c.value[i]]))]
                        cerrs.append(abs(c.reported_records[i] / size[i] - truth) / truth)
            cell_err.append(float(np.median(cerrs)) if cerrs else np.nan)
        rows.append({"epsilon": eps, "scale": round(plan.scale, 2), "queries": len(plan.queries),
                     "published_base_record_share": float(np.median(published_share)),
                     "published_nodes": float(np.median(published_nodes)),
                     "median_rel_error_cluster_share": float(np.nanmedian(cluster_err)),
                     "median_rel_error_cell_share": float(np.nanmedian(cell_err)) if not np.all(np.isnan(cell_err)) else None})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=20000, help="demo records (default 20000, the demo's)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 4.0, 16.0, 64.0])
    ap.add_argument("--sets", nargs="+", default=["demo", "hwu64"])
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/privacy_cost.json"))
    args = ap.parse_args(argv)
    results = {"date": date.today().isoformat(), "machine": f"{platform.processor() or platform.machine()}, "
               f"{os.cpu_count()} cores", "bound": BOUND, "floors": FLOORS, "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sets:
            frame, overrides = demo_frame(args.records) if name == "demo" else hwu64_frame()
            labels, parents, users, facets, seconds = run_once(frame, overrides, Path(tmp) / name)
            results["sets"][name] = {
                "records": len(frame), "users": int(users.max()) + 1, "levels": [len(p) for p in parents],
                "run_s": round(seconds, 1), "secondary": secondary_cost(labels, parents, users, facets),
                "noise": noise_cost(labels, parents, users, facets, args.epsilons, args.seeds)}
            print(json.dumps({name: results["sets"][name]}, indent=1), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    pct = lambda x: f"{100 * x:.1f}%"
    lines = []
    for name, r in results["sets"].items():
        sec = r["secondary"]
        lines += [f"**{name}** ({r['records']:,} records, {r['users']:,} users, levels {r['levels']})", "",
                  "| | " + " | ".join(f"level {l}" for l in range(len(sec["levels"]))) + " | facet cells |",
                  "|---|" + "---:|" * (len(sec["levels"]) + 1),
                  "| records published, primary only | " + " | ".join(pct(x["primary"]) for x in sec["levels"])
                  + f" | {pct(sec['facet_cells']['primary'])} |",
                  "| … after secondary suppression | " + " | ".join(pct(x["secondary"]) for x in sec["levels"])
                  + f" | {pct(sec['facet_cells']['secondary'])} |", "",
                  "| total ε | noise scale (B = 5) | records in published base clusters | published nodes | "
                  "median rel. error, cluster shares | median rel. error, facet-cell shares |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for row in r["noise"]:
            cell = row["median_rel_error_cell_share"]
            lines.append(f"| {row['epsilon']:g} | {row['scale']:g} | {pct(row['published_base_record_share'])} | "
                         f"{row['published_nodes']:g} | {pct(row['median_rel_error_cluster_share'])} | "
                         + (pct(cell) if cell is not None else "—") + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
