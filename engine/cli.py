"""`clio-engine` command line: demo, embed, bench. Bad input ends in one clear line, not a traceback."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from engine.errors import ClioError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except ClioError as exc:
        print(f"clio-engine: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("clio-engine: interrupted (finished chunks are kept; re-run to resume)", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clio-engine", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="embed and cluster synthetic conversation summaries with the default model")
    demo.add_argument("--config", default="demo", help="config file or preset name (default: demo)")
    demo.add_argument("-n", "--records", type=int, help="number of synthetic records (default: the config's, 20000)")
    _embed_options(demo)
    demo.set_defaults(func=_cmd_demo)

    emb = sub.add_parser("embed", help="embed the texts of a Parquet/CSV/JSONL file into a .npy matrix")
    emb.add_argument("input", help="Parquet, CSV or JSONL file (optionally .gz)")
    emb.add_argument("--out", required=True, help="output .npy file [N, D] float32, rows in input order of accepted records")
    emb.add_argument("--config", help="config file or preset name; command-line options override it")
    emb.add_argument("--text-column", help="column holding the text (default: text)")
    emb.add_argument("--id-column", help="column holding record ids (default: id if present, else row numbers)")
    _embed_options(emb)
    emb.set_defaults(func=_cmd_embed)

    bench = sub.add_parser("bench", help="run a benchmark suite (from a source checkout)")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for python -m benchmarks.run")
    bench.set_defaults(func=_cmd_bench)
    return parser


def _embed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="'default', a model directory or a hub id")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--batch-tokens", type=int, help="padded token slots per batch")
    p.add_argument("--max-length", type=int, help="truncate texts to this many tokens")
    p.add_argument("--cache-dir", help="where models and embedding caches live")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _config(args: argparse.Namespace):
    from engine.config import load_config

    overrides = {f"embed.{k}": getattr(args, k) for k in ("model", "device", "dtype", "batch_tokens", "max_length", "cache_dir")
                 if getattr(args, k, None) is not None}
    if args.no_progress:
        overrides["embed.progress"] = False
    for key, attr in (("input.text_column", "text_column"), ("input.id_column", "id_column")):
        if getattr(args, attr, None) is not None:
            overrides[key] = getattr(args, attr)
    return load_config(args.config, overrides)


def _cmd_embed(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.embed import embed
    from engine.records import load_records

    cfg = _config(args)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise ClioError(f"--out must name a .npy file, got {out}")
    records = load_records(args.input, text_column=cfg.input.text_column, id_column=cfg.input.id_column,
                           user_column=cfg.input.user_column, facet_columns=cfg.input.facet_columns, format=cfg.input.format)
    print(records.summary())
    vectors, report = embed(records.texts, out=out, return_report=True, **cfg.embed.model_dump())
    # Sidecars: which record each row is, and every rejected row with its reason.
    pq.write_table(records.table.select(["row", "id"]), out.with_suffix(".rows.parquet"))
    pq.write_table(records.rejected, out.with_suffix(".rejected.parquet"))
    print(report.summary())
    print(f"wrote {out} {tuple(vectors.shape)}, {out.with_suffix('.rows.parquet').name}, "
          f"{out.with_suffix('.rejected.parquet').name} ({records.n_rejected} rejected)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from engine.datasets import generate_conversations
    from engine.embed import embed
    from engine.records import load_records

    cfg = _config(args)
    n = args.records or getattr(cfg.input, "synthetic_records", None) or 20_000
    t0 = time.perf_counter()
    frame = generate_conversations(n, seed=cfg.seed)
    records = load_records(frame, user_column="user_id", facet_columns=["language", "country", "platform"])
    print(f"generated {len(frame):,} synthetic conversation summaries in {time.perf_counter() - t0:.1f}s: "
          f"{frame['domain'].nunique()} domains, {frame['topic'].nunique()} topics, "
          f"{frame['subtopic'].nunique()} subtopics, {frame['user_id'].nunique():,} users")
    print(records.summary())
    vectors, report = embed(records.texts, return_report=True, **cfg.embed.model_dump())
    print(report.summary())
    labels = frame.set_index("id").loc[records.ids]
    for level in ("domain", "topic", "subtopic"):
        acc = _nearest_neighbour_agreement(vectors, labels[level].to_numpy(), seed=cfg.seed)
        print(f"  nearest-neighbour {level:8s} agreement: {acc:6.1%}  (share of records whose nearest other record has the same {level})")
    _demo_kmeans(vectors, labels, cfg)
    print("The hierarchy, naming and privacy stages come with the next issues; see README.md.")
    return 0


def _demo_kmeans(vectors, labels, cfg) -> None:
    """Flat k-means at each level's true number of labels, scored against the generator's topics."""
    from sklearn.metrics import normalized_mutual_info_score

    from engine.cluster import KMeans

    for level in ("domain", "topic"):
        truth = labels[level].to_numpy()
        k = len(set(truth))
        t0 = time.perf_counter()
        model = KMeans(k, metric="cosine", seed=cfg.seed, backend=cfg.cluster.backend).fit(vectors)
        nmi = normalized_mutual_info_score(truth, model.labels_)
        print(f"  k-means k={k:<3d} ({model.backend_}, {time.perf_counter() - t0:.1f}s): NMI {nmi:.3f} against the known {level}s")


def _nearest_neighbour_agreement(vectors, labels, *, seed: int, sample: int = 2000) -> float:
    """Share of sampled records whose most similar other record has the same label."""
    import numpy as np

    rng = np.random.default_rng(seed)
    picks = rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False)
    sims = vectors[picks] @ vectors.T
    sims[np.arange(len(picks)), picks] = -np.inf  # not itself
    return float(np.mean(labels[sims.argmax(axis=1)] == labels[picks]))


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        from benchmarks.run import main as bench_main
    except ImportError:
        raise ClioError("benchmarks are run from a source checkout: cd clio-engine && clio-engine bench --suite embed") from None
    return bench_main(args.rest)


if __name__ == "__main__":
    sys.exit(main())
