"""Hierarchy quality on the two-level labelled sets (SPEC §9): HWU64 and MASSIVE, scenario → intent.

For each set: embed every row's `text` with the default model (engine.embed, dtype auto, disk cache);
then, for each seed,

- base      = engine.KMeans(k = #intents, metric="cosine", n_init, seed), scored against the intents
              (and, for reference, against the scenarios);
- hierarchy = engine.build_hierarchy(base centers, base sizes, levels=2, top=#scenarios, seed): the
              centroid strategy (size-weighted k-means of the base centroids); each row's
              scenario-level cluster is `tree.ancestors()[base_label, 1]`, scored against the scenarios.
              Run with the strategy's default restarts (`n_init="auto"`) and with the former fixed
              default `CentroidStrategy(n_init=3)`, so the change is visible;
- flat      = engine.KMeans(k = #scenarios, same metric, n_init and seed) on the rows, scored against
              the scenarios: the peer the hierarchy's parent level must not be worse than.

Scores: NMI and V-measure (scikit-learn; with its default arithmetic normalisation the two are the
same number, both are kept), ARI too. Reported: per seed, medians over seeds, and the number of seeds
where the hierarchy's scenario NMI ≥ flat k-means'.

    PYTHONPATH=. python -m benchmarks.hierarchy_quality [--seeds 0 1 2 3 4] [--sets hwu64 massive_en_us]
        [--n-init 3] [--output benchmarks/results/hierarchy_quality_<date>.json]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.data import REPO, data_dir

SETS = {"hwu64": "hwu64.csv.gz", "massive_en_us": "massive_en_us.csv.gz"}
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
DEFAULT_N_INIT = 3
# (key, clustering, label level it is scored against)
ROWS = (
    ("base_vs_intent", "base k-means (k = #intents)", "intent"),
    ("base_vs_scenario", "base k-means (k = #intents), reference", "scenario"),
    ("hierarchy_vs_scenario", "hierarchy parent level (centroid, n_init auto)", "scenario"),
    ("hierarchy_n_init3_vs_scenario", "hierarchy parent level (centroid, n_init=3: former default)", "scenario"),
    ("flat_vs_scenario", "flat k-means (k = #scenarios)", "scenario"),
)


@dataclass(frozen=True)
class TwoLevelSet:
    name: str
    texts: list[str]
    intent: np.ndarray  # [N] label strings
    scenario: np.ndarray  # [N]

    @property
    def n_intents(self) -> int:
        return len(np.unique(self.intent))

    @property
    def n_scenarios(self) -> int:
        return len(np.unique(self.scenario))


def load_two_level(folder: Path, name: str, limit: int | None = None) -> TwoLevelSet:
    """Every non-blank row of a scenario → intent set (`label` is the intent); the first `limit` rows
    of a fixed-seed shuffle when `limit` is given."""
    import pandas as pd

    path = Path(folder) / SETS.get(name, name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is absent from the data folder")
    frame = pd.read_csv(path, keep_default_na=False, usecols=["text", "label", "scenario"])
    frame = frame[frame["text"].str.strip() != ""]
    if limit is not None:
        frame = frame.sample(n=min(limit, len(frame)), random_state=0)
    return TwoLevelSet(name, frame["text"].astype(str).tolist(), frame["label"].to_numpy(), frame["scenario"].to_numpy())


def embed_set(data: TwoLevelSet, model: str = "default") -> tuple[np.ndarray, float]:
    import clio_engine as engine

    t0 = time.perf_counter()
    x = engine.embed(data.texts, model=model, dtype="auto", progress=False)
    return x, time.perf_counter() - t0


def _scores(truth: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

    return {"nmi": float(normalized_mutual_info_score(truth, labels)),
            "v_measure": float(v_measure_score(truth, labels)),
            "ari": float(adjusted_rand_score(truth, labels)),
            "clusters": int(len(np.unique(labels)))}


def evaluate_seed(x: np.ndarray, data: TwoLevelSet, seed: int, n_init: int = DEFAULT_N_INIT,
                  with_old_default: bool = True) -> dict:
    """All scores for one seed: {row key: {nmi, v_measure, ari, clusters}} plus timings and inertias."""
    import clio_engine as engine
    from clio_engine.hierarchy import CentroidStrategy

    out: dict = {"seed": seed, "seconds": {}}
    t0 = time.perf_counter()
    base = engine.KMeans(data.n_intents, metric="cosine", n_init=n_init, random_state=seed, backend="cpu").fit(x)
    out["seconds"]["base_kmeans"] = time.perf_counter() - t0
    sizes = np.bincount(base.labels_, minlength=data.n_intents).astype(np.float64)
    keep = sizes > 0  # build_hierarchy wants positive sizes; an empty base cluster has no rows to place
    remap = np.cumsum(keep) - 1
    centers, sizes = base.cluster_centers_[keep], sizes[keep]
    base_labels = remap[base.labels_]
    out["base_vs_intent"] = _scores(data.intent, base_labels)
    out["base_vs_scenario"] = _scores(data.scenario, base_labels)
    out["base_inertia"] = float(base.inertia_)

    strategies = [("hierarchy_vs_scenario", CentroidStrategy())]
    if with_old_default:
        strategies.append(("hierarchy_n_init3_vs_scenario", CentroidStrategy(n_init=3)))
    for key, strategy in strategies:
        t0 = time.perf_counter()
        tree = engine.build_hierarchy(centers, sizes, levels=2, top=data.n_scenarios, seed=seed, strategy=strategy)
        out["seconds"][key.replace("_vs_scenario", "")] = time.perf_counter() - t0
        parent = tree.ancestors()[base_labels, 1]
        out[key] = _scores(data.scenario, parent)
        out[key]["restarts"] = strategy.restarts(len(centers), data.n_scenarios, centers.shape[1])
        out[key]["grouping_inertia"] = _grouping_inertia(tree)

    t0 = time.perf_counter()
    flat = engine.KMeans(data.n_scenarios, metric="cosine", n_init=n_init, random_state=seed, backend="cpu").fit(x)
    out["seconds"]["flat_kmeans"] = time.perf_counter() - t0
    out["flat_vs_scenario"] = _scores(data.scenario, flat.labels_)
    out["flat_inertia"] = float(flat.inertia_)
    return out


def _grouping_inertia(tree) -> float:
    """The objective the centroid strategy minimises at level 1: Σ size · (1 − cos(child, parent))."""
    level = tree.levels[0]
    parents = tree.levels[1].centroid[level.parent]
    cos = np.sum(level.centroid * parents, axis=1)
    return float(np.sum(level.size * (1.0 - cos)))


def summarise(per_seed: list[dict]) -> dict:
    keys = [key for key, _, _ in ROWS if key in per_seed[0]]
    summary = {key: {metric: statistics.median(r[key][metric] for r in per_seed) for metric in ("nmi", "v_measure", "ari")}
               for key in keys}
    for key in ("hierarchy_vs_scenario", "hierarchy_n_init3_vs_scenario"):
        if key in keys:
            summary[key]["seeds_nmi_ge_flat"] = sum(r[key]["nmi"] >= r["flat_vs_scenario"]["nmi"] for r in per_seed)
            summary[key]["median_nmi_minus_flat"] = statistics.median(
                r[key]["nmi"] - r["flat_vs_scenario"]["nmi"] for r in per_seed)
    return summary


def run(sets: list[str], seeds: list[int], n_init: int, folder: Path) -> dict:
    from benchmarks.report import machine_info

    info = machine_info("cpu")
    info["command"] = " ".join(shlex.quote(a) for a in ["python", "-m", "benchmarks.hierarchy_quality", *sys.argv[1:]])
    result = {"benchmark": "hierarchy_quality", "machine": info, "seeds": seeds, "n_init": n_init, "sets": {}}
    for name in sets:
        data = load_two_level(folder, name)
        x, embed_s = embed_set(data)
        per_seed = []
        for seed in seeds:
            per_seed.append(evaluate_seed(x, data, seed, n_init))
            r = per_seed[-1]
            print(f"{name} seed {seed}: base/intent {r['base_vs_intent']['nmi']:.4f}  hierarchy/scenario "
                  f"{r['hierarchy_vs_scenario']['nmi']:.4f} (n_init=3: {r['hierarchy_n_init3_vs_scenario']['nmi']:.4f})  "
                  f"flat/scenario {r['flat_vs_scenario']['nmi']:.4f}", file=sys.stderr, flush=True)
        result["sets"][name] = {
            "rows": len(data.texts), "unique_texts": len(set(data.texts)), "n_intents": data.n_intents,
            "n_scenarios": data.n_scenarios, "embed_seconds": embed_s, "per_seed": per_seed,
            "summary": summarise(per_seed),
        }
    result["machine"]["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return result


def markdown(result: dict) -> str:
    seeds = result["seeds"]
    head = ["set", "clustering", "k", "scored against", "NMI median", "V-measure median", "ARI median",
            f"NMI per seed ({', '.join(map(str, seeds))})", "seeds ≥ flat"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 4 + ["---:"] * 4 + ["---"]) + "|"]
    for name, s in result["sets"].items():
        label = f"{name} ({s['rows']:,} rows, {s['n_intents']} intents, {s['n_scenarios']} scenarios)"
        for key, what, level in ROWS:
            if key not in s["summary"]:
                continue
            k = s["n_scenarios"] if level == "scenario" and key != "base_vs_scenario" else s["n_intents"]
            m = s["summary"][key]
            per = " / ".join(f"{r[key]['nmi']:.3f}" for r in s["per_seed"])
            ge = f"{m['seeds_nmi_ge_flat']}/{len(seeds)} (median Δ {m['median_nmi_minus_flat']:+.3f})" \
                if "seeds_nmi_ge_flat" in m else ""
            lines.append(f"| {label} | {what} | {k} | {level} | {100 * m['nmi']:.2f} | {100 * m['v_measure']:.2f} | "
                         f"{100 * m['ari']:.2f} | {per} | {ge} |")
            label = ""
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--n-init", type=int, default=DEFAULT_N_INIT,
                        help="k-means restarts for the base and the flat k-means (default %(default)s)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=None, help="JSON file (default benchmarks/results/hierarchy_quality_<date>.json)")
    args = parser.parse_args(argv)
    result = run(args.sets, args.seeds, args.n_init, data_dir(args.data_dir))
    out = Path(args.output) if args.output else \
        REPO / "benchmarks" / "results" / f"hierarchy_quality_{_dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    print(f"Machine: {m['cpu_model']} ({m['cpu_cores_visible']} cores visible, flags {', '.join(m['cpu_flags'])}), "
          f"{m['platform']}, Python {m['python']}, torch {m['torch_version']} ({m.get('torch_threads')} threads)")
    print(f"Command: `{m['command']}`  (base and flat k-means n_init={args.n_init}, metric cosine, backend cpu)")
    print(f"Date: {m['date']} → {m['finished']}; load average at start {', '.join(f'{v:.2f}' for v in m['load_average_at_start'] or [])}; "
          f"git {m.get('git_commit')}{' + uncommitted changes' if m.get('git_tracked_changes') else ''}")
    print(f"JSON: {out}")
    print()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
