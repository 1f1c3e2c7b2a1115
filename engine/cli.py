"""`clio-engine` command line: demo, run, embed, explore, bench. Bad input ends in one clear line, not a traceback."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from clio_engine.errors import ClioError


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
    demo.add_argument("--out", help="run directory (default: the config's output.dir, runs/demo)")
    _embed_options(demo)
    demo.set_defaults(func=_cmd_demo)

    runp = sub.add_parser("run", help="the whole pipeline on a file: records → ... → run directory")
    runp.add_argument("config", help="config file or preset name (default, demo, clio, gpu, strict)")
    runp.add_argument("--input", help="Parquet, CSV or JSONL file (overrides input.path)")
    runp.add_argument("--out", help="run directory (overrides output.dir)")
    runp.add_argument("--text-column", help="column holding the text (default: text)")
    runp.add_argument("--id-column", help="column holding record ids")
    runp.add_argument("--user-column", help="column holding user ids (privacy thresholds count distinct users)")
    runp.add_argument("--facets", help="comma-separated facet columns (e.g. language,country)")
    runp.add_argument("--k", type=int, help="number of base clusters (default: N / cluster.target_cluster_size)")
    _embed_options(runp)
    runp.set_defaults(func=_cmd_run)

    emb = sub.add_parser("embed", help="embed the texts of a Parquet/CSV/JSONL file into a .npy matrix")
    emb.add_argument("input", help="Parquet, CSV or JSONL file (optionally .gz)")
    emb.add_argument("--out", required=True, help="output .npy file [N, D] float32, rows in input order of accepted records")
    emb.add_argument("--config", help="config file or preset name; command-line options override it")
    emb.add_argument("--text-column", help="column holding the text (default: text)")
    emb.add_argument("--id-column", help="column holding record ids (default: id if present, else row numbers)")
    _embed_options(emb)
    emb.set_defaults(func=_cmd_embed)

    explore = sub.add_parser("explore", help="rebuild a run's explorer.html and open it (or serve it on localhost)")
    explore.add_argument("run_dir", help="a finished run directory")
    explore.add_argument("--serve", action="store_true", help="serve the page on http://127.0.0.1:PORT instead of opening the file")
    explore.add_argument("--port", type=int, default=8765, help="port for --serve (default 8765; 0 picks a free one)")
    explore.add_argument("--no-open", action="store_true", help="only rebuild the page; open no browser")
    explore.set_defaults(func=_cmd_explore)

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


def _config(args: argparse.Namespace, extra: dict | None = None):
    from clio_engine.config import load_config

    overrides = dict(extra or {})
    overrides |= {f"embed.{k}": getattr(args, k) for k in ("model", "device", "dtype", "batch_tokens", "max_length", "cache_dir")
                 if getattr(args, k, None) is not None}
    if args.no_progress:
        overrides["embed.progress"] = False
    for key, attr in (("input.text_column", "text_column"), ("input.id_column", "id_column"),
                      ("input.user_column", "user_column"), ("cluster.k", "k")):
        if getattr(args, attr, None) is not None:
            overrides[key] = getattr(args, attr)
    if getattr(args, "facets", None):
        overrides["input.facet_columns"] = [f.strip() for f in args.facets.split(",") if f.strip()]
    return load_config(args.config, overrides)


def _cmd_embed(args: argparse.Namespace) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clio_engine.embed import embed
    from clio_engine.records import load_records

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
    """The whole pipeline on synthetic records, then Clio's check: do the clusters reconstruct the topics?"""
    import numpy as np

    from clio_engine.datasets import LEVELS, generate_conversations, reconstruction_accuracy
    from clio_engine.pipeline import run

    overrides = {"input.synthetic_records": args.records} if args.records else {}
    cfg = _config(args, overrides)
    if cfg.input.path is not None or not cfg.input.synthetic_records:
        raise ClioError("demo needs a config with input.synthetic_records and no input.path (use `run` for files)")
    t0 = time.perf_counter()
    result = run(cfg, out=args.out)
    seconds = time.perf_counter() - t0
    _print_summary(result)
    truth = generate_conversations(cfg.input.synthetic_records, seed=cfg.seed).set_index("id")
    rows = result.assignments[result.assignments.status == "clustered"]
    known = truth.loc[rows["id"].to_numpy()]
    levels = [c for c in rows.columns if c.startswith("level_")]
    print("\nReconstruction of the generator's known topics (share of records whose cluster's majority "
          "label is their own; Clio reports 94%):")
    header = "".join(f"{f'level {i} ({len(np.unique(rows[c]))})':>16s}" for i, c in enumerate(levels))
    print(f"  {'':18s}{header}")
    for level in reversed(LEVELS):
        accs = [reconstruction_accuracy(known[level].to_numpy(), rows[c].to_numpy()) for c in levels]
        print(f"  {level + f' ({known[level].nunique()})':18s}" + "".join(f"{a:16.1%}" for a in accs))
    print(f"\nrun directory: {result.dir}  ({seconds:.0f}s; see report.md, clusters.parquet, assignments.parquet)")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from clio_engine.pipeline import run

    cfg = _config(args)
    t0 = time.perf_counter()
    result = run(cfg, input=args.input, out=args.out)
    _print_summary(result)
    print(f"\nrun directory: {result.dir}  ({time.perf_counter() - t0:.0f}s)")
    return 0


def _print_summary(result) -> None:
    m = result.manifest
    inp = m["input"]
    print(f"{inp['rows']:,} rows: {inp['accepted']:,} accepted, {inp['rejected']:,} rejected; {m['users']['note']}")
    print(f"levels (base → top): {' → '.join(map(str, m['levels']))}; published per level: "
          + ", ".join(f"{lv['published']}/{lv['nodes']}" for lv in m["privacy"]["levels"]))
    stages = m["run"]["stages"]
    print("stages: " + ", ".join(f"{k} {v['seconds']:.1f}s" + (" (cached)" if v["reused"] else "") for k, v in stages.items()))
    print("top-level clusters:")
    for row in result.top_clusters().itertuples():
        size = "suppressed" if row.size is None or row.size != row.size else f"{int(row.size):,}"
        print(f"  {row.share:6.1%}  {row.name:40s} {size:>10s} records")


def _cmd_explore(args: argparse.Namespace) -> int:
    """Rebuild explorer.html from the run directory's published files, then open or serve it."""
    import webbrowser

    from clio_engine.explorer import build_explorer

    page = build_explorer(args.run_dir)
    print(f"wrote {page} ({page.stat().st_size / 1e6:.1f} MB)")
    if args.serve:
        from clio_engine.explorer.serve import make_server

        server = make_server(page, port=args.port)
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        print(f"serving {page.name} at {url} (Ctrl-C stops)", flush=True)
        if not args.no_open:
            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
        finally:
            server.server_close()
    elif not args.no_open and not webbrowser.open(page.resolve().as_uri()):
        print(f"no browser found here; open {page.resolve().as_uri()} or use --serve")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        from benchmarks.run import main as bench_main
    except ImportError:
        raise ClioError("benchmarks are run from a source checkout: cd clio-engine && clio-engine bench --suite embed") from None
    return bench_main(args.rest)


if __name__ == "__main__":
    sys.exit(main())
