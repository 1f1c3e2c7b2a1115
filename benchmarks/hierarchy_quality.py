"""Hierarchy quality (SPEC §9, issue 11 item 7): parent-grouping methods against known coarse labels.

Labelled two-level sets (fine label → coarse label):

- hwu64, massive_en_us: intent → scenario (the `label` and `scenario` columns);
- onet: O*NET task statement → occupation (923) → SOC major group (22), from `onet_task_statements.csv.gz`
  (its `occupation` and `soc_major` columns, joined by the data folder's builder from the O*NET-SOC code
  onto `soc2018_structure.csv.gz`; every task matched). Base clusters are found on the task statements.

For each set: embed every row's `text` with the default model (engine.embed, dtype auto, disk cache);
then, for each seed,

- base      = engine.KMeans(k = #fine labels, metric="cosine", n_init, seed), scored against the fine
              labels (and, for reference, the coarse ones);
- one row per grouping method (`--methods`, the registered `hierarchy.mode`s plus the variants in
  `METHODS`): engine.build_hierarchy(base centers, base sizes, levels=2, top=#coarse labels, seed,
  strategy); each row's parent = `tree.ancestors()[base_label, 1]`, scored against the coarse labels.
  Name-embedding methods get the base clusters' names and keywords from `KeywordNamer` (the pipeline's
  default namer, run as the hierarchy stage runs it: every base cluster, min_users 5, rules scrubber, no
  examples; every record counts as its own user), and embed them with the same model;
- flat      = engine.KMeans(k = #coarse labels, same metric, n_init and seed) on the rows: the peer.

The synthetic demo (`demo`): engine.generate_conversations(20,000, seed=0) as `clio-engine demo` runs it
(base k = 800, KMeans n_init=1 as the pipeline's cluster stage; base centroids = unit means; hierarchy
levels=3, top=10, so 800 → 89 → 10; names from the generator's user ids). Scored by Clio's reconstruction
accuracy (`engine.datasets.reconstruction_accuracy`): level 1 against `topic`, top against `domain`, plus
NMI; flat k-means with k = 89 and k = 10 on the rows for reference.

Scores: NMI (scikit-learn, arithmetic normalisation = V-measure) and ARI. Reported: per seed and medians
over seeds, and for each method the seeds where its coarse NMI ≥ flat k-means'.

    PYTHONPATH=. python -m benchmarks.hierarchy_quality [--seeds 0 1 2 3 4] [--sets hwu64 massive_en_us onet demo]
        [--methods kmeans ward average names names-hybrid] [--n-init 3] [--output benchmarks/results/hierarchy_methods.json]
        [--limit ROWS] [--llm KEY=VALUE ...]   (--methods clio asks an LLM: the offline SmolLM2 unless --llm says)
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
from typing import Callable

import numpy as np

from benchmarks.data import REPO, data_dir

SETS = {"hwu64": "hwu64.csv.gz", "massive_en_us": "massive_en_us.csv.gz", "onet": "onet_task_statements.csv.gz"}
ALL_SETS = (*SETS, "demo")
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
DEFAULT_N_INIT = 3
DEMO_RECORDS, DEMO_TARGET_SIZE, DEMO_LEVELS, DEMO_TOP = 20_000, 25, 3, 10
DEFAULT_OUTPUT = REPO / "benchmarks" / "results" / "hierarchy_methods.json"


def _methods() -> dict[str, Callable]:
    """Benchmark name → factory(embedder) → Strategy."""
    from clio_engine.hierarchy import AgglomerativeStrategy, CentroidStrategy, NameEmbeddingStrategy

    return {
        "kmeans": lambda emb: CentroidStrategy(),
        "kmeans-n_init3": lambda emb: CentroidStrategy(n_init=3),
        "ward": lambda emb: AgglomerativeStrategy(linkage="ward"),
        "average": lambda emb: AgglomerativeStrategy(linkage="average"),
        "ward-unweighted": lambda emb: AgglomerativeStrategy(linkage="ward", weighted=False),
        "ward-kmeans": lambda emb: AgglomerativeStrategy(linkage="ward", refine=True),
        "ward-unweighted-kmeans": lambda emb: AgglomerativeStrategy(linkage="ward", weighted=False, refine=True),
        "average-unweighted": lambda emb: AgglomerativeStrategy(linkage="average", weighted=False),
        "names": lambda emb: NameEmbeddingStrategy(emb, inner="ward"),
        "names-hybrid": lambda emb: NameEmbeddingStrategy(emb, mix=0.5, inner="ward"),
        "names-kmeans": lambda emb: NameEmbeddingStrategy(emb, name="names-kmeans"),
        "names-hybrid-kmeans": lambda emb: NameEmbeddingStrategy(emb, mix=0.5, name="names-hybrid-kmeans"),
        "clio": _clio,
    }


# `clio` asks an LLM: by default the offline SmolLM2-135M (slow on CPU, poor names; use --limit), else the
# `llm` settings given with --llm (e.g. backend=openai model=... base_url=...).
LLM_OVERRIDES = {"backend": "transformers", "model_path": None, "max_tokens": 80, "batch_size": 16, "progress": False}


def _clio(emb):
    from clio_engine.config import load_config
    from clio_engine.hierarchy import ClioStrategy

    return ClioStrategy(emb, load_config(None, {f"llm.{k}": v for k, v in LLM_OVERRIDES.items()}))


METHOD_NAMES = ("kmeans", "kmeans-n_init3", "ward", "average", "ward-unweighted", "average-unweighted", "ward-kmeans",
                "ward-unweighted-kmeans", "names",
                "names-hybrid", "names-kmeans", "names-hybrid-kmeans", "clio")
DEFAULT_METHODS = ("kmeans", "ward", "average", "ward-unweighted", "ward-kmeans", "ward-unweighted-kmeans", "names",
                   "names-hybrid")


def registered_default() -> str:
    """The `METHODS` name of what the default config's `hierarchy.mode` builds today (matched by the
    strategy's name; `CentroidStrategy` calls itself "centroid")."""
    from clio_engine.config import load_config
    from clio_engine.hierarchy import HIERARCHY_STRATEGIES

    cfg = load_config(None)
    name = getattr(HIERARCHY_STRATEGIES.get(cfg.hierarchy.mode).factory(cfg), "name", "centroid")
    return "kmeans" if name == "centroid" else name


@dataclass(frozen=True)
class TwoLevelSet:
    """Rows with a fine label (`intent`: HWU64/MASSIVE intent, O*NET occupation) and a coarse one
    (`scenario`: scenario, SOC major group). `users` [N] user codes (None: each row its own user)."""

    name: str
    texts: list[str]
    intent: np.ndarray  # [N] fine label strings
    scenario: np.ndarray  # [N] coarse label strings
    fine: str = "intent"
    coarse: str = "scenario"

    @property
    def n_intents(self) -> int:
        return len(np.unique(self.intent))

    @property
    def n_scenarios(self) -> int:
        return len(np.unique(self.scenario))


def load_two_level(folder: Path, name: str, limit: int | None = None) -> TwoLevelSet:
    """Every non-blank row of a two-level set; the first `limit` rows of a fixed-seed shuffle when given."""
    import pandas as pd

    path = Path(folder) / SETS.get(name, name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is absent from the data folder")
    if name == "onet":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["task", "occupation", "soc_code", "soc_major"])
        frame = frame.rename(columns={"task": "text"})
        frame["label"] = frame["soc_code"] + " " + frame["occupation"]
        frame["scenario"] = frame["soc_major"]
        fine, coarse = "occupation", "SOC major"
    else:
        frame = pd.read_csv(path, keep_default_na=False, usecols=["text", "label", "scenario"])
        fine, coarse = "intent", "scenario"
    frame = frame[frame["text"].str.strip() != ""]
    if limit is not None:
        frame = frame.sample(n=min(limit, len(frame)), random_state=0)
    return TwoLevelSet(name, frame["text"].astype(str).tolist(), frame["label"].to_numpy(), frame["scenario"].to_numpy(),
                       fine, coarse)


def embed_set(data, model: str = "default") -> tuple[np.ndarray, float]:
    import clio_engine as engine

    t0 = time.perf_counter()
    x = engine.embed(list(data.texts), model=model, dtype="auto", progress=False)
    return x, time.perf_counter() - t0


def embedder(model: str = "default") -> Callable:
    """Short node texts → vectors with the benchmark's model (no disk cache, as the pipeline's strategy)."""
    def run(texts):
        import clio_engine as engine

        return engine.embed(list(texts), model=model, dtype="auto", progress=False, cache=False)

    return run


def base_names(texts: list[str], x: np.ndarray, base_labels: np.ndarray, centers: np.ndarray, sizes: np.ndarray,
               users: np.ndarray | None = None):
    """KeywordNamer's NodeName for every base cluster, as the hierarchy stage computes them (all published)."""
    from clio_engine.hierarchy import Level, Tree
    from clio_engine.naming.namer import KeywordNamer
    from clio_engine.privacy.scrub import Scrubber

    users = np.arange(len(texts)) if users is None else users
    flat = Tree((Level(np.full(len(sizes), -1, np.int64), np.asarray(sizes, np.float64), centers),), "base")
    namer = KeywordNamer(n_examples=0, scrubber=Scrubber())
    return namer.name_tree(texts, x, [base_labels], flat, [np.ones(len(sizes), dtype=bool)], users)[0]


def _scores(truth: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return {"nmi": float(normalized_mutual_info_score(truth, labels)), "ari": float(adjusted_rand_score(truth, labels)),
            "clusters": int(len(np.unique(labels)))}


CACHE_DIR: Path | None = None  # `--cache-dir`: k-means results reused across runs (set by main)


def _cached(key: tuple, compute: Callable[[], dict]) -> dict:
    """`compute()` (a dict of arrays), or its earlier result stored under CACHE_DIR for the same key (the
    data's fingerprint, k, n_init, seed): lets a run with other methods skip the base and flat k-means."""
    import hashlib

    if CACHE_DIR is None:
        return compute()
    path = CACHE_DIR / (hashlib.sha256(repr(key).encode()).hexdigest()[:24] + ".npz")
    if path.exists():
        with np.load(path) as z:
            return dict(z)
    value = compute()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(path, **value)
    return value


def _fingerprint(x: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:16]


def _kmeans_labels(x: np.ndarray, k: int, seed: int, n_init: int) -> np.ndarray:
    import clio_engine as engine

    def fit():
        return {"labels": engine.KMeans(k, metric="cosine", n_init=n_init, random_state=seed, backend="cpu").fit(x).labels_}

    return _cached(("kmeans", _fingerprint(x), k, seed, n_init), fit)["labels"]


def _base(x: np.ndarray, k: int, seed: int, n_init: int, unit_means: bool = False):
    """Base k-means: compact labels [N], centers [k', D], sizes [k'] (empty clusters dropped). Centers: the
    k-means centers, or with `unit_means` the unit mean of each cluster's rows (the pipeline's cluster stage)."""
    from clio_engine.pipeline.stages import centroids_of

    def fit():
        import clio_engine as engine

        model = engine.KMeans(k, metric="cosine", n_init=n_init, random_state=seed, backend="cpu").fit(x)
        _, labels = np.unique(model.labels_, return_inverse=True)
        labels = labels.astype(np.int64)
        kept = int(labels.max()) + 1
        if unit_means:
            centers, sizes = centroids_of(x, labels, kept)
        else:
            centers, sizes = model.cluster_centers_[np.unique(model.labels_)], np.bincount(labels, minlength=kept)
        return {"labels": labels, "centers": centers, "sizes": sizes.astype(np.float64)}

    b = _cached(("base", _fingerprint(x), k, seed, n_init, unit_means), fit)
    return b["labels"], b["centers"], b["sizes"]


def evaluate_seed(x: np.ndarray, data: TwoLevelSet, seed: int, n_init: int = DEFAULT_N_INIT,
                  with_old_default: bool = False, methods: tuple[str, ...] = ("kmeans",), model: str = "default") -> dict:
    """All scores for one seed: base/intent, base/scenario, `methods[name]` (coarse scores of each grouping
    method) and flat/scenario; `hierarchy_vs_scenario` is the default config's `hierarchy.mode` row."""
    import clio_engine as engine

    out: dict = {"seed": seed, "seconds": {}, "methods": {}}
    t0 = time.perf_counter()
    base_labels, centers, sizes = _base(x, data.n_intents, seed, n_init)
    out["seconds"]["base_kmeans"] = time.perf_counter() - t0
    out["base_vs_intent"] = _scores(data.intent, base_labels)
    out["base_vs_scenario"] = _scores(data.scenario, base_labels)
    names = None
    factories = _methods()
    emb = embedder(model)
    default = registered_default()
    wanted = list(dict.fromkeys([*methods, default] + (["kmeans-n_init3"] if with_old_default else [])))
    for method in wanted:
        strategy = factories[method](emb)
        if getattr(strategy, "needs_names", False) and names is None:
            t0 = time.perf_counter()
            names = base_names(data.texts, x, base_labels, centers, sizes)
            out["seconds"]["base_names"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tree = engine.build_hierarchy(centers, sizes, levels=2, top=data.n_scenarios, seed=seed, strategy=strategy,
                                      base_names=names if getattr(strategy, "needs_names", False) else None)
        out["seconds"][method] = time.perf_counter() - t0
        out["methods"][method] = _scores(data.scenario, tree.ancestors()[base_labels, 1])
        if getattr(strategy, "report", None) is not None:  # an LLM strategy: each step's answers and fallbacks
            out.setdefault("llm", {})[method] = {"report": strategy.report, "usage": strategy.usage}
    out["hierarchy_vs_scenario"] = out["methods"][default]
    t0 = time.perf_counter()
    flat = _kmeans_labels(x, data.n_scenarios, seed, n_init)
    out["seconds"]["flat_kmeans"] = time.perf_counter() - t0
    out["flat_vs_scenario"] = _scores(data.scenario, flat)
    return out


def evaluate_demo_seed(x: np.ndarray, frame, seed: int, methods: tuple[str, ...], model: str = "default") -> dict:
    """The demo's 800 → 89 → 10 tree per method: reconstruction accuracy and NMI of level 1 vs topic and of
    the top vs domain; flat k-means (k = 89, k = 10) on the rows for reference."""
    import clio_engine as engine
    from clio_engine.datasets import reconstruction_accuracy
    from clio_engine.hierarchy import level_sizes

    k = round(len(frame) / DEMO_TARGET_SIZE)
    out: dict = {"seed": seed, "seconds": {}, "methods": {}}
    t0 = time.perf_counter()
    base_labels, centers, sizes = _base(x, k, seed, 1, unit_means=True)
    out["seconds"]["base_kmeans"] = time.perf_counter() - t0
    counts = level_sizes(len(sizes), DEMO_LEVELS, DEMO_TOP)
    out["levels"] = counts
    topic, domain = frame["topic"].to_numpy(), frame["domain"].to_numpy()
    _, users = np.unique(frame["user_id"].to_numpy(), return_inverse=True)

    def score(level_labels: list[np.ndarray]) -> dict:
        mid, top = level_labels
        return {"topic_accuracy": reconstruction_accuracy(topic, mid), "domain_accuracy": reconstruction_accuracy(domain, top),
                "topic_nmi": _scores(topic, mid)["nmi"], "domain_nmi": _scores(domain, top)["nmi"],
                "topic_ari": _scores(topic, mid)["ari"], "domain_ari": _scores(domain, top)["ari"]}

    out["base"] = {"topic_accuracy": reconstruction_accuracy(topic, base_labels),
                   "domain_accuracy": reconstruction_accuracy(domain, base_labels)}
    names, factories, emb = None, _methods(), embedder(model)
    for method in methods:
        strategy = factories[method](emb)
        if strategy.needs_names and names is None:
            t0 = time.perf_counter()
            names = base_names(frame["text"].tolist(), x, base_labels, centers, sizes, users)
            out["seconds"]["base_names"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tree = engine.build_hierarchy(centers, sizes, levels=DEMO_LEVELS, top=DEMO_TOP, seed=seed, strategy=strategy,
                                      base_names=names if strategy.needs_names else None)
        out["seconds"][method] = time.perf_counter() - t0
        anc = tree.ancestors()[base_labels]
        out["methods"][method] = score([anc[:, 1], anc[:, 2]])
    t0 = time.perf_counter()
    flat = [_kmeans_labels(x, c, seed, 1) for c in counts[1:]]
    out["seconds"]["flat_kmeans"] = time.perf_counter() - t0
    out["flat"] = score(flat)
    return out


def summarise(per_seed: list[dict]) -> dict:
    """Medians over seeds of every method's coarse scores; seeds and median Δ against flat k-means.
    `default` names the method the default config builds (`registered_default`)."""
    summary: dict = {"default": registered_default()}
    rows = {"base_vs_intent": lambda r: r["base_vs_intent"], "base_vs_scenario": lambda r: r["base_vs_scenario"],
            "flat_vs_scenario": lambda r: r["flat_vs_scenario"]}
    rows.update({m: (lambda r, m=m: r["methods"][m]) for m in per_seed[0]["methods"]})
    for key, get in rows.items():
        summary[key] = {metric: statistics.median(get(r)[metric] for r in per_seed) for metric in ("nmi", "ari")}
        if key not in ("base_vs_intent", "base_vs_scenario", "flat_vs_scenario"):
            summary[key]["seeds_nmi_ge_flat"] = sum(get(r)["nmi"] >= r["flat_vs_scenario"]["nmi"] for r in per_seed)
            summary[key]["median_nmi_minus_flat"] = statistics.median(
                get(r)["nmi"] - r["flat_vs_scenario"]["nmi"] for r in per_seed)
    return summary


def summarise_demo(per_seed: list[dict]) -> dict:
    metrics = ("topic_accuracy", "domain_accuracy", "topic_nmi", "domain_nmi", "topic_ari", "domain_ari")
    summary = {m: {k: statistics.median(r["methods"][m][k] for r in per_seed) for k in metrics}
               for m in per_seed[0]["methods"]}
    summary["flat"] = {k: statistics.median(r["flat"][k] for r in per_seed) for k in metrics}
    summary["base"] = {k: statistics.median(r["base"][k] for r in per_seed) for k in ("topic_accuracy", "domain_accuracy")}
    return summary


def run(sets: list[str], seeds: list[int], n_init: int, folder: Path, methods: tuple[str, ...],
        out: Path | None = None, limit: int | None = None) -> dict:
    """Every set and seed; with `out`, the JSON so far is rewritten after each seed (a cut-short run keeps
    its finished seeds). `limit`: a sample of each labelled set's rows (`load_two_level`)."""
    from benchmarks.report import machine_info

    info = machine_info("cpu")
    info["command"] = " ".join(shlex.quote(a) for a in ["python", "-m", "benchmarks.hierarchy_quality", *sys.argv[1:]])
    result = {"benchmark": "hierarchy_methods", "machine": info, "seeds": seeds, "n_init": n_init,
              "methods": list(methods), "sets": {}}
    for name in sets:
        if name == "demo":
            run_demo(seeds, methods, result, lambda: _save(result, out))
            continue
        data = load_two_level(folder, name, limit)
        x, embed_s = embed_set(data)
        per_seed: list[dict] = []
        for seed in seeds:
            per_seed.append(evaluate_seed(x, data, seed, n_init, methods=methods))
            r = per_seed[-1]
            print(f"{name} seed {seed}: flat {r['flat_vs_scenario']['nmi']:.4f} " + " ".join(
                f"{m} {s['nmi']:.4f}" for m, s in r["methods"].items()), file=sys.stderr, flush=True)
            result["sets"][name] = {
                "rows": len(data.texts), "fine": data.fine, "coarse": data.coarse, "n_intents": data.n_intents,
                "n_scenarios": data.n_scenarios, "embed_seconds": embed_s, "per_seed": per_seed,
                "summary": summarise(per_seed)}
            _save(result, out)
    return result


def _save(result: dict, out: Path | None) -> None:
    result["machine"]["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")


def run_demo(seeds: list[int], methods: tuple[str, ...], result: dict, save: Callable[[], None]) -> None:
    import clio_engine as engine

    frame = engine.generate_conversations(DEMO_RECORDS, seed=0)
    t0 = time.perf_counter()
    x = engine.embed(frame["text"].tolist(), model="default", dtype="auto", progress=False)
    embed_s = time.perf_counter() - t0
    per_seed = []
    for seed in seeds:
        per_seed.append(evaluate_demo_seed(x, frame, seed, methods))
        r = per_seed[-1]
        print(f"demo seed {seed}: flat {r['flat']['topic_accuracy']:.3f}/{r['flat']['domain_accuracy']:.3f} " + " ".join(
            f"{m} {s['topic_accuracy']:.3f}/{s['domain_accuracy']:.3f}" for m, s in r["methods"].items()),
            file=sys.stderr, flush=True)
        result["demo"] = {"rows": len(frame), "levels": per_seed[0]["levels"], "embed_seconds": embed_s,
                          "per_seed": per_seed, "summary": summarise_demo(per_seed)}
        save()


def merge(parts: list[dict]) -> dict:
    """One result from runs of separate sets: the first run's header, every run's sets and commands."""
    result = dict(parts[0], sets={}, machine=dict(parts[0]["machine"]))
    result["machine"]["command"] = " ; ".join(p["machine"]["command"] for p in parts)
    result["machine"]["finished"] = max(p["machine"]["finished"] for p in parts)
    result["methods"] = list(dict.fromkeys(m for p in parts for m in p["methods"]))
    for part in parts:
        result["sets"].update(part["sets"])
        if "demo" in part:
            result["demo"] = part["demo"]
    return result


def markdown(result: dict) -> str:
    seeds = result["seeds"]
    lines = []
    if result["sets"]:
        lines += ["| set | grouping (parent level) | k | NMI median | ARI median | "
                  f"NMI per seed ({', '.join(map(str, seeds))}) | seeds ≥ flat (median Δ NMI) |",
                  "|---|---|---:|---:|---:|---|---|"]
    for name, s in result["sets"].items():
        label = f"{name} ({s['rows']:,} rows; {s['n_intents']} {s['fine']} → {s['n_scenarios']} {s['coarse']})"
        order = [("base_vs_intent", f"base k-means vs {s['fine']} (reference)", s["n_intents"]),
                 ("flat_vs_scenario", "flat k-means (peer)", s["n_scenarios"])]
        order += [(m, m, s["n_scenarios"]) for m in result["methods"] if m in s["summary"]]
        for key, what, k in order:
            m = s["summary"][key]
            get = {"base_vs_intent": lambda r: r["base_vs_intent"], "flat_vs_scenario": lambda r: r["flat_vs_scenario"],
                   }.get(key, lambda r, key=key: r["methods"][key])
            per = " / ".join(f"{get(r)['nmi']:.3f}" for r in s["per_seed"])
            ge = f"{m['seeds_nmi_ge_flat']}/{len(s['per_seed'])} ({m['median_nmi_minus_flat']:+.3f})" \
                if "seeds_nmi_ge_flat" in m else ""
            lines.append(f"| {label} | {what} | {k} | {100 * m['nmi']:.2f} | {100 * m['ari']:.2f} | {per} | {ge} |")
            label = ""
    if "demo" in result:
        d = result["demo"]
        lv = d["levels"]
        lines += ["", f"Demo ({d['rows']:,} records, tree {' → '.join(map(str, lv))}), medians over seeds "
                  f"{', '.join(str(r['seed']) for r in d['per_seed'])}:", "",
                  f"| grouping | level 1 ({lv[1]}) vs topic: accuracy | NMI | top ({lv[2]}) vs domain: accuracy | NMI | "
                  "topic accuracy per seed | domain accuracy per seed |",
                  "|---|---:|---:|---:|---:|---|---|"]
        for key in [*result["methods"], "flat"]:
            if key not in d["summary"]:
                continue
            m = d["summary"][key]
            get = (lambda r: r["flat"]) if key == "flat" else (lambda r, key=key: r["methods"][key])
            what = f"flat k-means (k = {lv[1]}, {lv[2]})" if key == "flat" else key
            lines.append(f"| {what} | {100 * m['topic_accuracy']:.1f}% | {100 * m['topic_nmi']:.2f} | "
                         f"{100 * m['domain_accuracy']:.1f}% | {100 * m['domain_nmi']:.2f} | "
                         + " / ".join(f"{100 * get(r)['topic_accuracy']:.1f}" for r in d["per_seed"]) + " | "
                         + " / ".join(f"{100 * get(r)['domain_accuracy']:.1f}" for r in d["per_seed"]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--sets", nargs="+", default=list(ALL_SETS), choices=list(ALL_SETS))
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=list(METHOD_NAMES))
    parser.add_argument("--n-init", type=int, default=DEFAULT_N_INIT,
                        help="k-means restarts for the base and the flat k-means of the labelled sets (default %(default)s)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", default=str(DEFAULT_OUTPUT), help="JSON file (default %(default)s)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="combine earlier runs' JSON files (one set each, same seeds) instead of running")
    parser.add_argument("--cache-dir", default=None,
                        help="reuse base and flat k-means results stored here by an earlier run (same data, k, seed)")
    parser.add_argument("--limit", type=int, default=None,
                        help="labelled sets: a fixed-seed sample of this many rows (e.g. for --methods clio)")
    parser.add_argument("--llm", nargs="+", default=[], metavar="KEY=VALUE",
                        help="`llm` settings for --methods clio (default: the offline SmolLM2)")
    args = parser.parse_args(argv)
    global CACHE_DIR
    CACHE_DIR = Path(args.cache_dir) if args.cache_dir else None
    if args.llm:
        import yaml

        LLM_OVERRIDES.update({k: yaml.safe_load(v) for k, _, v in (a.partition("=") for a in args.llm)})
    if args.merge:
        result = merge([json.loads(Path(p).read_text()) for p in args.merge])
    else:
        from clio_engine.llm import llm_session

        # one LLM generator for the whole benchmark (a local model loads once); its calls cached with the k-means
        with llm_session(CACHE_DIR / "llm" if CACHE_DIR else None, progress=False):
            result = run(args.sets, args.seeds, args.n_init, data_dir(args.data_dir), tuple(args.methods),
                         Path(args.output), limit=args.limit)
    out = Path(args.output)
    if args.merge:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
    m = result["machine"]
    print(f"Machine: {m['cpu_model']} ({m['cpu_cores_visible']} cores visible), {m['platform']}, Python {m['python']}, "
          f"torch {m['torch_version']} ({m.get('torch_threads')} threads)")
    print(f"Command: `{m['command']}`  (labelled sets: base and flat k-means n_init={args.n_init}, cosine, backend cpu)")
    print(f"Date: {m['date']} → {m['finished']}; git {m.get('git_commit')}"
          f"{' + uncommitted changes' if m.get('git_tracked_changes') else ''}")
    print(f"JSON: {out}")
    print()
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
