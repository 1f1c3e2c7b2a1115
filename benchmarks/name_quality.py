"""Name quality of the no-LLM namers (issue 11, item 7): do cluster names retrieve their cluster's gold intent?

For each labelled set (banking77: k = 77; hwu64: k = #intents = 64) every text is embedded with the default
model (`clio_engine.embed`, dtype auto; vectors cached under `--cache-dir`, keyed by the texts, so reruns
skip it). Then, for each seed:

1. engine `KMeans(k, metric="cosine", random_state=seed, backend="cpu")` on the vectors; one tree level,
   every cluster published, every record its own user, `min_users` = 5 (privacy.min_users default);
2. each namer names every cluster (examples off: they are not scored);
3. score: the cluster's name is embedded with the default model and the nearest gold label name by cosine
   (label `card_arrival` → text "card arrival") among all of the set's labels is retrieved; the score is
   the share of clusters whose retrieved label is their majority gold label. Variant "+desc" embeds
   "<name>. <description>" instead.

`--gold-partition` also names the gold partition (one cluster per label, no clustering error) with every
namer but `llm`, to separate what the namer misses from what mixed clusters cost, and scores the names the
developer wrote for each label without seeing it (`benchmarks/reference_names/<set>.csv`; the protocol is in
that folder's README, and `--write-blind-sheet DIR` writes the unlabelled sheet it starts from): how far
careful, readable names get on the same metric.

Reported: per seed, the median over seeds, a markdown table (stdout) and JSON (`--output`), plus the names
of the first clusters of seed 0 so readability can be judged by eye. Namers: `keywords` (today's default),
`phrases` (engine.naming.phrases, defaults: a name is one phrase or a pair of phrases), its ablations
(`phrases_single`: one phrase per name; `phrases_ctfidf`: no embedding re-rank, c-TF-IDF order;
`phrases_nocontrast`: relevance = own-centroid similarity only; `phrases_centroid`: name options ranked
against the centroid instead of the node's mode; `phrases_unbound`: pieces of longer phrases, "lean" of "lean
canvas", kept as candidates), and `llm` (engine.naming.llm, run only
when `--namers` names it: the offline SmolLM2-135M through `llm.backend: transformers`, shown
`--llm-in` / `--llm-out` texts of at most `--llm-chars` characters per cluster — fewer than the 50 + 50
default, so a CPU finishes; calls cached under `--cache-dir`/llm, so a rerun sends none). `--llm-set
llm.KEY=VALUE` points it elsewhere, e.g. at a llama.cpp server holding the same GGUF (`llm.backend=openai`,
`llm.base_url=...`, `llm.server_writes_labels=llama.cpp`).

    PYTHONPATH=. python -m benchmarks.name_quality [--sets banking77 hwu64] [--seeds 0 1 2]
        [--namers keywords phrases llm] [--llm-in 10] [--llm-out 5] [--llm-chars 160] [--llm-tokens 120]
        [--llm-set llm.KEY=VALUE ...]
        [--clusters N] [--gold-partition] [--write-blind-sheet DIR]
        [--cache-dir /tmp/name_quality] [--output benchmarks/results/name_quality.json]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.data import REPO, data_dir

SETS = {"banking77": "banking77.csv.gz", "hwu64": "hwu64.csv.gz"}
REFERENCE_NAMES = REPO / "benchmarks" / "reference_names"  # <set>.csv: label,name written blind by the developer
BLIND_SEEDS = {"banking77": 11, "hwu64": 7}  # the order of the groups on each set's blind sheet
BLIND_TEXTS = 8  # texts shown per label on the blind sheet
DEFAULT_SEEDS = (0, 1, 2)
MIN_USERS = 5  # privacy.min_users default
N_SHOWN = 12   # names of seed 0 kept in the JSON per namer


NAMERS = ("keywords", "phrases", "phrases_single", "phrases_ctfidf", "phrases_nocontrast", "phrases_centroid",
          "phrases_unbound", "llm")
DEFAULT_NAMERS = NAMERS[:-1]  # the llm namer is slow on a CPU: run it by naming it


def llm_namer(in_examples: int = 10, out_examples: int = 5, max_chars: int = 160, max_tokens: int = 120, seed: int = 0,
              embed_phrases: Callable | None = None, settings: dict | None = None):
    """The `llm` namer on the offline SmolLM2 (llm.backend transformers, llm.model_path null), or on the `llm`
    config `settings` name (`--llm-set llm.backend=openai`, a server's URL, ...). Where the model's answer is
    unusable it falls back to the `phrases` namer, as in the pipeline (naming.registry); without
    `embed_phrases`, to the keyword namer."""
    from clio_engine.config import load_config
    from clio_engine.naming import PhraseNamer
    from clio_engine.naming.llm import LlmNamer

    cfg = load_config(None, {"llm.backend": "transformers", "llm.progress": False, "seed": seed, **(settings or {})})
    fallback = PhraseNamer(embed_phrases=embed_phrases, min_users=MIN_USERS, examples="none") if embed_phrases else None
    return LlmNamer(cfg, in_examples=in_examples, out_examples=out_examples, max_chars=max_chars, max_tokens=max_tokens,
                    min_users=MIN_USERS, examples="none", seed=seed, fallback=fallback)


def namers(embed_fn: Callable, selected=DEFAULT_NAMERS, llm_options: dict | None = None) -> dict[str, Callable | None]:
    """name → factory() of a fresh namer (None: a namer not selected, reported empty)."""
    return {name: factory if name in selected else None for name, factory in _factories(embed_fn, llm_options).items()}


def _factories(embed_fn: Callable, llm_options: dict | None) -> dict[str, Callable]:
    from clio_engine.naming import KeywordNamer, PhraseNamer

    return {
        "keywords": lambda: KeywordNamer(min_users=MIN_USERS, examples="none"),
        "phrases": lambda: PhraseNamer(embed_phrases=embed_fn, min_users=MIN_USERS, examples="none"),
        "phrases_single": lambda: PhraseNamer(embed_phrases=embed_fn, name_phrases=1, min_users=MIN_USERS, examples="none"),
        "phrases_ctfidf": lambda: PhraseNamer(embed_phrases=None, min_users=MIN_USERS, examples="none"),
        "phrases_nocontrast": lambda: PhraseNamer(embed_phrases=embed_fn, contrast=0.0, min_users=MIN_USERS, examples="none"),
        "phrases_centroid": lambda: PhraseNamer(embed_phrases=embed_fn, query="centroid", min_users=MIN_USERS, examples="none"),
        "phrases_unbound": lambda: PhraseNamer(embed_phrases=embed_fn, bound_share=1.0, min_users=MIN_USERS, examples="none"),
        "llm": lambda: llm_namer(**(llm_options or {}), embed_phrases=embed_fn),
    }


def embed_fn(texts: list[str]) -> np.ndarray:
    from clio_engine.embed import embed

    return np.asarray(embed(list(texts), progress=False, cache=False), dtype=np.float32)


def load_set(folder: Path, name: str) -> tuple[list[str], np.ndarray]:
    import pandas as pd

    frame = pd.read_csv(folder / SETS[name], keep_default_na=False)
    return frame["text"].astype(str).tolist(), frame["label"].astype(str).to_numpy()


def cached_vectors(texts: list[str], cache_dir: Path, name: str) -> np.ndarray:
    key = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"{name}_default_{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embed_fn(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def label_text(label: str) -> str:
    return label.replace("_", " ").strip()


def retrieval_score(queries: list[str], majority: np.ndarray, label_vectors: np.ndarray) -> float:
    """Share of clusters whose query (name, or name + description) retrieves its majority gold label."""
    q = embed_fn(queries)
    return float(np.mean(np.argmax(q @ label_vectors.T, axis=1) == majority))


def run_set(name: str, folder: Path, seeds, cache_dir: Path, selected=DEFAULT_NAMERS, llm_options: dict | None = None,
            n_clusters: int | None = None, gold_partition: bool = False) -> dict:
    """`n_clusters`: name and score only that many clusters (seeded choice; the rest count as unpublished for
    every namer, so all are scored on the same subset) — the llm namer on a CPU needs a subsample.
    `gold_partition`: also name the gold partition itself (see `name_gold_partition`)."""
    from clio_engine.cluster import KMeans

    texts, gold = load_set(folder, name)
    labels, gold_codes = np.unique(gold, return_inverse=True)
    t0 = time.perf_counter()
    vectors = cached_vectors(texts, cache_dir, name)
    embed_s = time.perf_counter() - t0
    label_vectors = embed_fn([label_text(label) for label in labels])
    k = len(labels)
    users = np.arange(len(texts), dtype=np.int64)
    factories = namers(embed_fn, selected, llm_options)
    written = reference_names(name, labels) if gold_partition else None  # a bad file fails before the seeds run
    per_seed: dict[str, list[dict]] = {n: [] for n in factories}
    shown: dict[str, list[dict]] = {}
    references: dict[str, list[float]] = {"centroid": [], "phrase_oracle": []}
    for seed in seeds:
        km = KMeans(k, metric="cosine", random_state=seed, backend="cpu").fit(vectors)
        base = km.labels_.astype(np.int64)
        tree = flat_tree(base, km.cluster_centers_)
        centroids = tree.levels[0].centroid
        majority = np.array([np.bincount(gold_codes[base == c], minlength=k).argmax() for c in range(k)])
        mask = np.ones(k, dtype=bool)
        if n_clusters is not None and n_clusters < k:
            mask[:] = False
            mask[np.random.default_rng(seed).choice(k, n_clusters, replace=False)] = True
        scored = np.flatnonzero(mask)
        for namer_name, factory in factories.items():
            if factory is None:
                continue
            t1 = time.perf_counter()
            namer = factory()
            out = namer.name_tree(texts, vectors, [base], tree, [mask], users)[0]
            seconds = time.perf_counter() - t1
            out = [out[c] for c in scored]
            names = [node.name for node in out]
            row = {"seed": seed, "name": retrieval_score(names, majority[scored], label_vectors),
                   "name_desc": retrieval_score([f"{node.name}. {node.description}" for node in out], majority[scored],
                                                label_vectors),
                   "fallback_names": sum(n.startswith("Cluster ") for n in names), "seconds": round(seconds, 2)}
            if hasattr(namer, "fallbacks"):  # the llm namer: keyword names where the model's answer was unusable
                row.update(llm_fallbacks=namer.fallbacks, collisions=namer.collisions, llm_usage=namer.usage)
            per_seed[namer_name].append(row)
            if seed == seeds[0]:
                shown[namer_name] = [{"gold": label_text(labels[majority[c]]), "name": node.name,
                                      "keywords": node.keywords[:4]} for c, node in list(zip(scored, out))[:N_SHOWN]]
            print(f"{name} seed {seed} {namer_name}: name {row['name']:.3f} name+desc {row['name_desc']:.3f} "
                  f"({seconds:.1f}s)", file=sys.stderr, flush=True)
        references["centroid"].append(float(np.mean(np.argmax(centroids[scored] @ label_vectors.T, axis=1)
                                                    == majority[scored])))
        references["phrase_oracle"].append(phrase_oracle(texts, vectors, base, tree, users, majority, label_vectors, mask))
    gold = (name_gold_partition(texts, vectors, gold_codes, users, label_vectors, factories, written)
            if gold_partition else None)
    summary = {}
    for namer_name, rows in per_seed.items():
        if not rows:
            summary[namer_name] = None
            continue
        summary[namer_name] = {key: statistics.median(r[key] for r in rows) for key in ("name", "name_desc", "seconds")}
    return {"n_texts": len(texts), "k": k, "embed_seconds": round(embed_s, 1), "median": summary,
            "per_seed": per_seed, "references": {**{key: {"per_seed": v, "median": statistics.median(v)}
                                                    for key, v in references.items()}, "gold_partition": gold},
            "names_seed0": shown}


def flat_tree(labels: np.ndarray, centers: np.ndarray):
    """One tree level of the K = len(centers) clusters in `labels` [N]: their sizes, and `centers` [K, D]
    scaled to unit length as the centroids."""
    from clio_engine.hierarchy.tree import Level, Tree

    k = len(centers)
    unit = centers / np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)
    sizes = np.bincount(labels, minlength=k).astype(np.float64)
    return Tree((Level(np.full(k, -1, np.int64), sizes, unit.astype(np.float32)),))


def name_gold_partition(texts, vectors, gold_codes, users, label_vectors, factories, written=None) -> dict:
    """Each namer (not `llm`) on the gold partition — one cluster per gold label, so no clustering error: the
    share of labels whose name retrieves that label, by name and name + description, the phrase oracle
    there, and the score of `written` (one name per label, written blind; None: skipped). What a namer misses
    here comes from the label names and the embedding, not from mixed clusters."""
    k = len(label_vectors)
    tree = flat_tree(gold_codes, np.stack([vectors[gold_codes == c].mean(axis=0) for c in range(k)]))
    target, mask = np.arange(k), np.ones(k, dtype=bool)
    out = {}
    for namer_name, factory in factories.items():
        if factory is None or namer_name == "llm":
            continue
        nodes = factory().name_tree(texts, vectors, [gold_codes.astype(np.int64)], tree, [mask], users)[0]
        out[namer_name] = {"name": retrieval_score([n.name for n in nodes], target, label_vectors),
                           "name_desc": retrieval_score([f"{n.name}. {n.description}" for n in nodes], target, label_vectors)}
        print(f"gold partition {namer_name}: name {out[namer_name]['name']:.3f}", file=sys.stderr, flush=True)
    out["phrase_oracle"] = phrase_oracle(texts, vectors, gold_codes.astype(np.int64), tree, users, target, label_vectors)
    if written is not None:
        out["reference_names"] = retrieval_score(written, target, label_vectors)
        print(f"gold partition, names written blind by the developer: {out['reference_names']:.3f}", file=sys.stderr)
    return out


def reference_names(name: str, labels: np.ndarray) -> list[str] | None:
    """The names the developer wrote for `labels` [K] of set `name` (in that order), or None where there is no
    file; a file that misses a label, names one twice, names an unknown one or leaves a name blank is an error,
    not a partial score."""
    import pandas as pd

    path = REFERENCE_NAMES / f"{name}.csv"
    if not path.exists():
        return None
    frame = pd.read_csv(path, keep_default_na=False, dtype=str)  # labels as load_set reads them ("1", not 1)
    written = dict(zip(frame["label"], frame["name"]))
    missing, unknown = sorted(set(labels) - set(written)), sorted(set(written) - set(labels))
    blank = sorted(label for label, text in written.items() if not text.strip())
    if len(written) != len(frame) or missing or unknown or blank:
        raise ValueError(f"{path}: needs exactly one name per label of {name} ({len(labels)}); has {len(frame)} rows "
                         f"for {len(written)} labels, {len(missing)} missing, unknown {unknown[:5]}, blank {blank[:5]}")
    return [written[label] for label in labels]


def blind_sheet(name: str, texts: list[str], gold: np.ndarray) -> tuple[list[str], list[str]]:
    """The sheet the names are written from: one line per label, "G<i>: text | text | …" with `BLIND_TEXTS` of its
    texts and no label, the labels in a seeded random order; returns (sheet lines, the label of each line)."""
    import pandas as pd

    frame = pd.DataFrame({"text": texts, "label": gold})
    labels = np.unique(gold)
    order = np.random.default_rng(BLIND_SEEDS[name]).permutation(len(labels))
    lines, key = [], []
    for g, li in enumerate(order):
        shown = frame[frame["label"] == labels[li]]["text"].sample(BLIND_TEXTS, random_state=g)
        lines.append(f"G{g}: " + " | ".join(t.replace("\n", " ") for t in shown))
        key.append(str(labels[li]))
    return lines, key


def phrase_oracle(texts, vectors, base, tree, users, majority, label_vectors, mask=None) -> float:
    """Upper bound of picking one phrase (uses the gold labels, so it is no namer): share of clusters where
    any of the phrase namer's candidates retrieves the majority gold label."""
    from clio_engine.naming import PhraseNamer

    namer = PhraseNamer(embed_phrases=embed_fn, min_users=MIN_USERS, examples="none", n_keywords=1000)
    mask = np.ones(len(majority), dtype=bool) if mask is None else mask
    out = namer.name_tree(texts, vectors, [base], tree, [mask], users)[0]
    hits = [bool(node.keywords) and bool(np.any(np.argmax(np.stack([namer._phrase_vectors[p] for p in node.keywords])
                                                          @ label_vectors.T, axis=1) == majority[c]))
            for c, node in enumerate(out) if node is not None]
    return float(np.mean(hits))


def table(results: dict) -> str:
    lines = ["| namer | " + " | ".join(f"{s} name | {s} name+desc" for s in results) + " |",
             "|---|" + "---:|---:|" * len(results)]
    namer_names = list(next(iter(results.values()))["median"])
    for namer_name in namer_names:
        cells = []
        for res in results.values():
            m = res["median"][namer_name]
            cells += ["n/a (not run)", "n/a"] if m is None else [f"{m['name']:.3f}", f"{m['name_desc']:.3f}"]
        lines.append(f"| {namer_name} | " + " | ".join(cells) + " |")
    for key, label in (("centroid", "reference: cluster centroid as the query"),
                       ("phrase_oracle", "reference: best candidate phrase, picked with the gold label (upper bound)")):
        cells = [f"{res['references'][key]['median']:.3f}" for res in results.values()]
        lines.append(f"| {label} | " + " | ".join(f"{c} | –" for c in cells) + " |")
    gold = [res["references"].get("gold_partition") for res in results.values()]
    if all(gold):
        for namer_name in gold[0]:
            scalar = namer_name in ("phrase_oracle", "reference_names")
            cells = [f"{g[namer_name]:.3f} | –" if scalar else
                     f"{g[namer_name]['name']:.3f} | {g[namer_name]['name_desc']:.3f}" for g in gold]
            label = {"phrase_oracle": "best candidate phrase (oracle)",
                     "reference_names": "names written blind by the developer"}.get(namer_name, namer_name)
            lines.append(f"| gold partition (one cluster per label): {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_blind_sheets(folder: Path, sets: list[str], target: Path) -> int:
    """<set>_sheet.txt (what the writer reads) and <set>_key.json (line → label, not to be read before the
    names are written) for each set."""
    target.mkdir(parents=True, exist_ok=True)
    for name in sets:
        texts, gold = load_set(folder, name)
        lines, key = blind_sheet(name, texts, gold)
        (target / f"{name}_sheet.txt").write_text("\n".join(lines) + "\n")
        (target / f"{name}_key.json").write_text(json.dumps({f"G{g}": label for g, label in enumerate(key)}, indent=0))
        print(f"{name}: {len(lines)} groups -> {target / (name + '_sheet.txt')}")
    return 0


def llm_settings(parser: argparse.ArgumentParser, pairs: list[str]) -> dict:
    """`--llm-set` pairs as config overrides; only keys of the `llm` section (the namer's other options have flags)."""
    from clio_engine.cli import _setting

    settings = {}
    for pair in pairs:
        try:
            key, value = _setting(pair)
        except argparse.ArgumentTypeError as e:
            parser.error(f"--llm-set: {e}")
        if not key.startswith("llm."):
            parser.error(f"--llm-set takes keys of the llm section (llm.backend=...), got {key!r}")
        settings[key] = value
    return settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--namers", nargs="+", default=list(DEFAULT_NAMERS), choices=list(NAMERS))
    parser.add_argument("--llm-in", type=int, default=10, help="llm namer: texts shown from inside each cluster")
    parser.add_argument("--llm-out", type=int, default=5, help="llm namer: texts shown from its nearest clusters")
    parser.add_argument("--llm-chars", type=int, default=160, help="llm namer: characters per text shown")
    parser.add_argument("--llm-tokens", type=int, default=120, help="llm namer: answer tokens at most")
    parser.add_argument("--llm-set", dest="llm_settings", metavar="llm.KEY=VALUE", action="append", default=[],
                        help="llm namer: one `llm` config key, repeatable, VALUE read as YAML (--llm-set llm.backend=openai "
                             "--llm-set llm.base_url=http://127.0.0.1:8080/v1 --llm-set llm.server_writes_labels=llama.cpp)")
    parser.add_argument("--clusters", type=int, default=None, help="name and score only this many clusters per seed")
    parser.add_argument("--gold-partition", action="store_true",
                        help="also name the gold partition (one cluster per label): the namers without clustering error")
    parser.add_argument("--write-blind-sheet", metavar="DIR", default=None,
                        help="write each set's unlabelled naming sheet (and its key) to DIR and stop")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--cache-dir", default="/tmp/name_quality")
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "name_quality.json"))
    args = parser.parse_args(argv)
    folder, cache_dir = data_dir(args.data_dir), Path(args.cache_dir)
    if args.write_blind_sheet:
        return write_blind_sheets(folder, args.sets, Path(args.write_blind_sheet))
    from clio_engine.llm.session import llm_session

    llm_options = {"in_examples": args.llm_in, "out_examples": args.llm_out, "max_chars": args.llm_chars,
                   "max_tokens": args.llm_tokens, "settings": llm_settings(parser, args.llm_settings)}
    with llm_session(cache_dir / "llm"):  # one SmolLM2 load for every seed and set; calls cached for reruns
        results = {name: run_set(name, folder, args.seeds, cache_dir, args.namers, llm_options, args.clusters,
                                 args.gold_partition)
                   for name in args.sets}
    md = table(results)
    print(f"Median over seeds {args.seeds}: share of clusters whose name retrieves their majority gold label\n")
    print(md)
    report = {"benchmark": "name_quality", "date": _dt.date.today().isoformat(),
              "command": "PYTHONPATH=. python -m benchmarks.name_quality " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": {"platform": platform.platform(), "python": platform.python_version()},
              "seeds": args.seeds, "min_users": MIN_USERS, "clusters": args.clusters, "namers": args.namers, "llm": llm_options, "table": md,
              "sets": results}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1, ensure_ascii=False, default=str))  # --llm-set dates
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
