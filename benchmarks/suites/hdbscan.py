"""Suite `hdbscan`: engine.HDBSCAN (CPU) against the `hdbscan` library and `fast_hdbscan`.

Data: the `kmeans` suite's real embeddings (~69k unique texts of five shared data sets, default
model, engine.embed's disk cache), reduced once to 10-D by engine.reduce's UMAP (cosine,
n_neighbors=15, min_dist=0, seed 0: the pipeline's HDBSCAN input), untimed and cached on disk under
<engine cache>/bench/ keyed by the input's hash and the parameters. Cases take the first 20k points and
(full mode) all of them, from one UMAP of the largest size.

Every contender gets the same float32 [N, 10] array and the same min_cluster_size / min_samples, the
rest at each library's defaults (eom selection, euclidean): `hdbscan` = hdbscan.HDBSCAN(...).fit(X),
what a user runs (its default Borůvka MST is approximate: `approx_min_span_tree=True`);
`hdbscan-exact` = the same with approx_min_span_tree=False, the exact HDBSCAN and the reference;
`fast_hdbscan` = fast_hdbscan.HDBSCAN(...).fit(X) (its numba kernels compile in the untimed warm-up);
`engine-cpu` = engine.HDBSCAN(backend="cpu"): our numba kernels (kernels/hdbscan: KD-tree core
distances, Borůvka MST over mutual reachability, condensed tree), compiled in the untimed warm-up.
Gate (ours): adjusted Rand index ≥ 0.99 to `hdbscan-exact` (noise counted as one label); the ARI of
every contender to the library's default run is reported beside it. Speed targets (issue 14): engine-cpu
≥ 2× `hdbscan` and no slower than fast_hdbscan at 69k × 10-D (the table's ratio columns).
`python -m benchmarks.suites.hdbscan RESULTS.json` prints the table for RESULTS.md.
"""
from __future__ import annotations

import functools
import hashlib
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Case, Contender, Gate, Options, Workload, register_suite
from benchmarks.data import data_dir
from benchmarks.suites.kmeans import SEED, real_embeddings

MIN_CLUSTER_SIZE, MIN_SAMPLES = 50, 10
UMAP_PARAMS = {"n_components": 10, "n_neighbors": 15, "min_dist": 0.0, "metric": "cosine"}
WARMUP_ROWS = 3_000
GATES = (Gate("ari_vs_hdbscan_exact", ">=", 0.99),)
SIZES = {True: (5_000,), False: (20_000, None)}  # None = every point of the real set


def reduce_umap(x: np.ndarray) -> np.ndarray:
    """clio_engine.reduce's 10-D cosine UMAP (seeded: single-threaded, reproducible)."""
    from clio_engine.reduce import reduce

    return reduce(x, method="umap", random_state=SEED, device="cpu", **UMAP_PARAMS)


def _cache_dir() -> Path:
    from clio_engine.embed.model_source import cache_root

    return cache_root() / "bench"


def reduced(x: np.ndarray) -> tuple[np.ndarray, dict]:
    """UMAP of x, from the disk cache when the same input and parameters were reduced before."""
    key = hashlib.sha256(np.ascontiguousarray(x).tobytes() + repr(sorted(UMAP_PARAMS.items())).encode()
                         + f"seed={SEED}".encode()).hexdigest()[:20]
    path = _cache_dir() / f"umap10-{x.shape[0]}-{key}.npy"
    if path.exists():
        return np.load(path), {"umap_cache": str(path), "umap_s": None}
    t0 = time.perf_counter()
    y = np.ascontiguousarray(reduce_umap(x), dtype=np.float32)
    seconds = time.perf_counter() - t0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial.npy")
    np.save(tmp, y)
    tmp.replace(path)
    return y, {"umap_cache": str(path), "umap_s": round(seconds, 1)}


@functools.lru_cache(maxsize=2)
def reduced_real(model: str, folder: str, n: int | None) -> tuple[np.ndarray, dict]:
    x, info = real_embeddings(model, folder, n)
    y, umap_info = reduced(x)
    return y, {**info, **umap_info, "umap": dict(UMAP_PARAMS, seed=SEED, library="clio_engine.reduce")}


def _load(n: int | None, largest: int | None, options: Options) -> Workload:
    y, info = reduced_real(options.model, str(data_dir(options.data_dir)), largest)
    y = y[:n] if n else y
    if options.limit is not None:
        y = y[: options.limit]
    return Workload(y, y[:WARMUP_ROWS], len(y), None, "points", "-", {**info, "n": len(y), "d": y.shape[1]})


def _labels(model) -> np.ndarray:
    return np.asarray(model.labels_, dtype=np.int64)


def contenders() -> tuple[tuple[Contender, ...], dict]:
    """The contenders of one case, and the dict where the library-defaults run leaves its labels
    (compare() reads them to report every contender's ARI to it as well)."""
    params = {"min_cluster_size": MIN_CLUSTER_SIZE, "min_samples": MIN_SAMPLES}
    last: dict = {}

    def run_hdbscan(x, exact: bool):
        import hdbscan

        kwargs = {"approx_min_span_tree": False} if exact else {}
        labels = _labels(hdbscan.HDBSCAN(**params, **kwargs).fit(x))
        if not exact:
            last["hdbscan"] = labels
        return labels

    def run_fast(x):
        import fast_hdbscan

        return _labels(fast_hdbscan.HDBSCAN(**params).fit(x))

    def run_engine(x):
        from clio_engine.cluster import HDBSCAN

        return _labels(HDBSCAN(**params, backend="cpu").fit(x))

    from importlib.metadata import version

    lib = f"hdbscan {version('hdbscan')}"
    return (Contender("hdbscan", functools.partial(run_hdbscan, exact=False), peer=True,
                      info={"library": lib, "call": "hdbscan.HDBSCAN(...) defaults: approximate Borůvka MST"}),
            Contender("hdbscan-exact", functools.partial(run_hdbscan, exact=True), peer=True,
                      info={"library": lib, "call": "hdbscan.HDBSCAN(..., approx_min_span_tree=False)"}),
            Contender("fast_hdbscan", run_fast, peer=True, info={"library": f"fast_hdbscan {version('fast_hdbscan')}"}),
            Contender("engine-cpu", run_engine, gates=GATES, info={"library": "clio_engine.HDBSCAN", "backend": "cpu"})), last


def compare_with(last: dict):
    def compare(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
        from sklearn.metrics import adjusted_rand_score

        metrics = {"ari_vs_hdbscan_exact": adjusted_rand_score(ref, out),
                   "n_clusters": float(len(np.unique(out[out >= 0]))), "noise_fraction": float((out < 0).mean())}
        defaults = last.get("hdbscan")
        if defaults is not None and len(defaults) == len(out):
            metrics["ari_vs_hdbscan_defaults"] = adjusted_rand_score(defaults, out)
        return metrics

    return compare


def _name(n: int | None) -> str:
    return "real-all" if n is None else f"real-{n // 1000}k" if n >= 1000 else f"real-{n}"


@register_suite("hdbscan", "clio_engine.HDBSCAN (cpu) vs hdbscan and fast_hdbscan on 10-D UMAP of real embeddings: time, ARI")
def build(options: Options):
    sizes = SIZES[options.quick]
    largest = None if None in sizes else max(sizes)
    for n in sizes:
        runs, last = contenders()
        yield Case("hdbscan", _name(n), functools.partial(_load, n, largest, options), runs,
                   reference="hdbscan-exact", compare=compare_with(last),
                   baselines=("hdbscan", "hdbscan-exact", "fast_hdbscan"),
                   info={"min_cluster_size": MIN_CLUSTER_SIZE, "min_samples": MIN_SAMPLES,
                         "cluster_selection_method": "eom", "metric": "euclidean (on the UMAP output)"})


def _f(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def format_markdown(payload: dict) -> str:
    """The suite's table for RESULTS.md: time, ratios to both peers, ARI, clusters, noise."""
    f = _f
    peers = ("hdbscan", "hdbscan-exact", "fast_hdbscan")
    lines = ["| case | N | contender | median s | × hdbscan | × hdbscan-exact | × fast_hdbscan | ARI vs hdbscan-exact "
             "| ARI vs hdbscan defaults | clusters | noise % | gate |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case in payload["cases"]:
        for c in case["contenders"]:
            m = c["metrics"]
            ratios = ["peer" if c["name"] == p else f((c["speedup"] or {}).get(p), ".2f") for p in peers]
            lines.append("| " + " | ".join([
                case["name"], f"{case['n_items']:,}", c["name"], f(c["median_s"], ".2f"), *ratios,
                f(m.get("ari_vs_hdbscan_exact"), ".4f"), f(m.get("ari_vs_hdbscan_defaults"), ".4f"), f(m.get("n_clusters"), ".0f"),
                f(100 * m["noise_fraction"] if "noise_fraction" in m else None, ".1f"),
                c["gate"] if not c["error"] else f"red ({c['error']})",
            ]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    print(format_markdown(json.loads(Path(sys.argv[1]).read_text())))
