"""The subcommand handlers (`_cmd_*`): each runs one command from its parsed arguments and prints its result."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from clio_engine.cli.exit_codes import EXIT_OK, EXIT_VIOLATIONS
from clio_engine.cli.options import _config, demo_overrides
from clio_engine.cli.summary import _print_summary, _terminal
from clio_engine.errors import ClioError, InputError


def _cmd_embed(args: argparse.Namespace) -> int:
    import pyarrow.parquet as pq

    from clio_engine.embed import embed
    from clio_engine.records import load_records
    from clio_engine.runfiles import create_owner_only_file, refuse_if_swapped
    from clio_engine.storage import writing

    cfg = _config(args)
    out = Path(args.out)
    if out.suffix != ".npy":
        raise ClioError(f"--out must name a .npy file, got {out}")
    if out.exists() and not out.is_file():
        raise ClioError(f"--out {out} exists and is not a file")
    _refuse_published_destination(out)
    records = load_records(args.input, text_column=cfg.input.text_column, id_column=cfg.input.id_column,
                           user_column=cfg.input.user_column, facet_columns=cfg.input.facet_columns, format=cfg.input.format,
                           null_users=cfg.input.null_users, conversation_column=cfg.input.conversation_column,
                           conversation_text=cfg.input.conversation_text)
    print(records.summary())
    if (why := records.none_accepted(str(args.input))) is not None:  # not an empty matrix and exit 0
        raise InputError(why)
    vectors, report = embed(records.texts, out=out, return_report=True, **cfg.embed.model_dump())
    # Sidecars: which record each row is, and every rejected row with its reason.
    rows = records.table.select(["row", "id"])
    if records.is_conversations:  # which text of each conversation these vectors are (input.conversation_text)
        from clio_engine.records import conversation_text_label

        text = conversation_text_label(cfg.input.conversation_text)
        rows = rows.replace_schema_metadata({**(rows.schema.metadata or {}), b"clio.text": text.encode()})
        print(f"embedded text: {text} of each conversation")
    for path, table in ((out.with_suffix(".rows.parquet"), rows),
                        (out.with_suffix(".rejected.parquet"), records.rejected)):
        with writing(path, path):  # a full disk: one line, and no half-written sidecar
            with create_owner_only_file(path) as handle:  # per-record ids, beside vectors that are owner-only too
                pq.write_table(table, handle)
            refuse_if_swapped(path)  # a file another account put at the name would pass for the run's
    print(report.summary())
    print(f"wrote {out} {tuple(vectors.shape)}, {out.with_suffix('.rows.parquet').name}, "
          f"{out.with_suffix('.rejected.parquet').name} ({records.n_rejected} rejected)")
    return 0


def _refuse_published_destination(out: Path) -> None:
    """Embeddings invert to texts (nearest neighbours under the public model), so they are private: refused
    inside a release folder, and inside a run directory anywhere but its private/ (its top level is the
    analyst's view). Elsewhere --out is the caller's file and is overwritten, as numpy.save would."""
    from clio_engine.pipeline.release import enclosing_release
    from clio_engine.runfiles import PRIVATE

    if (release := enclosing_release(out.parent)) is not None:
        raise ClioError(f"--out {out} is inside the release folder {release}: embeddings give the texts back and "
                        "never leave private/")
    folder = out.parent.resolve()
    for run in (folder, *folder.parents):
        if (run / "manifest.json").is_file() and (run / PRIVATE).is_dir():  # a run directory
            if folder.relative_to(run).parts[:1] != (PRIVATE,):
                raise ClioError(f"--out {out} is inside the run directory {run} outside its {PRIVATE}/: embeddings "
                                f"give the texts back; write them under {run / PRIVATE} or outside the run")
            return


def _cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline on synthetic records, then Clio's check: do the clusters reconstruct the topics?"""
    from clio_engine.datasets.demo_check import topic_check_lines, write_demo_check
    from clio_engine.pipeline import run

    cfg = _config(args, demo_overrides(args.records, args.llm, args.economic))
    if cfg.input.path is not None or not cfg.input.synthetic_records:
        raise ClioError("demo needs a config with input.synthetic_records and no input.path (use `run` for files)")
    t0 = time.perf_counter()
    result = run(cfg, out=args.out)  # (which removes the check an earlier demo left there)
    seconds = time.perf_counter() - t0
    _print_summary(result)
    if cfg.input.synthetic_kind == "economy":
        from clio_engine.economic.demo_check import economic_check_lines

        lines = economic_check_lines(result, cfg)
        what = "the synthetic economy's planted truths"
        files = "economic rows in economic.parquet and release/aggregates.csv"
    else:
        lines = topic_check_lines(result, cfg.input.synthetic_records, cfg.seed)
        what = "the generator's known topics"
        files = "see report.md, clusters.parquet; per-record data in private/, publishable files in release/"
    print("\n" + "\n".join(lines))
    kept = write_demo_check(result.dir, lines, what)
    print(f"\nrun directory: {result.dir}  ({seconds:.0f}s; {files}; this check in {kept.name})")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from clio_engine.pipeline import run

    cfg = _config(args)
    t0 = time.perf_counter()
    result = run(cfg, input=args.input, out=args.out)
    _print_summary(result)
    print(f"\nrun directory: {result.dir}  ({time.perf_counter() - t0:.0f}s)")
    return 0


def _cmd_assign(args: argparse.Namespace) -> int:
    """A new run over `--input` that reuses RUN_DIR's base centroids, tree and names (clio_engine.pipeline.reference)."""
    from clio_engine.config import load_config
    from clio_engine.pipeline import run
    from clio_engine.pipeline.reference import assign_overrides, check_same_text

    config, overrides = assign_overrides(args.run_dir, args.input, args.out)
    base = load_config(config)
    args.config = base
    cfg = _config(args, overrides)  # --text-column … --set over the earlier run's settings
    check_same_text(config, cfg)  # a renamed text column passes; another kind of text does not
    _note_other_facets(args.run_dir, cfg.input.facet_columns)
    t0 = time.perf_counter()
    result = run(cfg, out=args.out)
    _print_summary(result)
    names = (result.manifest.get("stages", {}).get("names") or {}).get("renamed_here")
    if names:
        print(f"{names} node(s) published now but not in {args.run_dir}: named from the new records")
    print(f"\nrun directory: {result.dir}  ({time.perf_counter() - t0:.0f}s; compare with `clio-engine compare "
          f"{args.run_dir} {result.dir}`)")
    return 0


def _note_other_facets(run_dir: str, facets: list[str]) -> None:
    """Warn where the new run's facet columns are not the earlier run's. Allowed: facets are breakdowns of
    this period's counts (each cell thresholded as in any run), not what places records (centroids, tree and
    names), so adding or dropping one is safe; but `compare` leaves out a dimension one of the runs lacks,
    and a facet column renamed in the new file is a different facet to it."""
    import json

    try:
        manifest = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
        before = list(manifest["input"]["facets"])
    except (OSError, ValueError, KeyError, TypeError):  # an older manifest: nothing to compare with
        return
    if sorted(before) != sorted(facets):  # (names and path from files: no control characters on a terminal)
        logging.getLogger(__package__).warning("%s", _terminal(  # clio_engine.cli
            f"assign: facet columns {', '.join(facets) or '(none)'} here but {', '.join(map(str, before)) or '(none)'} "
            f"in {run_dir}: the tree and names are the same, but compare leaves out any breakdown one run lacks"))


def _cmd_compare(args: argparse.Namespace) -> int:
    from clio_engine.pipeline.periods import compare_runs

    table, dest = compare_runs(args.run_a, args.run_b, out=args.out, n_boot=args.boot, alpha=args.alpha,
                               seed=args.seed)
    for dim, part in table.groupby("dimension", sort=False):
        sig = part[part.significant]
        print(f"{_terminal(dim)}: {len(sig)} of {len(part)} values moved significantly")
        for r in sig.head(5).itertuples():
            print(f"  {r.change:+6.2f} pp  {_terminal(str(r.value))[:70]}  [{r.ci_low:+.2f}, {r.ci_high:+.2f}]")
    print(f"\nwrote {dest / 'compare.csv'} and {dest / 'compare.md'}")
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    """Print each violation on one line; EXIT_VIOLATIONS if any, EXIT_INPUT (via InputError) for a bad dir."""
    from pathlib import Path

    from clio_engine.audit import audit, audit_together

    canaries = None
    if args.canary_file:
        try:
            # (utf-8-sig: a byte-order mark is no part of the first token)
            canaries = Path(args.canary_file).read_text(encoding="utf-8-sig").splitlines()
        except OSError as e:
            raise InputError(f"cannot read --canary-file {args.canary_file}: {e.strerror}") from None
    if len(args.dirs) == 1:
        found = audit(args.dirs[0], min_users=args.min_users, min_records=args.min_records, canaries=canaries)
    else:
        found = audit_together(args.dirs, min_users=args.min_users, min_records=args.min_records, canaries=canaries)
    for v in found:
        print(_terminal(str(v)))
    counts = {}
    for v in found:
        counts[v.attack] = counts.get(v.attack, 0) + 1
    print(f"audit {_terminal(', '.join(args.dirs))}: " + ("clean" if not found else
          f"{len(found)} violation{'' if len(found) == 1 else 's'} ("
          + ", ".join(f"{k} {n}" for k, n in counts.items()) + ")"))
    return EXIT_VIOLATIONS if found else EXIT_OK


def _cmd_release(args: argparse.Namespace) -> int:
    from clio_engine.pipeline.release import build_release

    dest = build_release(args.run_dir, args.out)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    print(f"wrote {dest}: {', '.join(files)}")
    return 0


def _cmd_purge(args: argparse.Namespace) -> int:
    from clio_engine.pipeline.release import purge

    removed = purge(args.run_dir)
    if not removed:
        print(f"{args.run_dir}: no private/ to purge")
        return 0
    for path in removed:
        print(f"removed {path}")
    print(f"purged {args.run_dir}: {len(removed) - 1} files under private/ removed; the analyst view and release/ remain")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    checkout = Path.cwd()  # the console script's sys.path holds its own folder, not the checkout it is run in
    if (checkout / "benchmarks" / "run.py").is_file() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        from benchmarks.run import main as bench_main
    except ImportError:
        raise ClioError("benchmarks are run from a source checkout: cd clio-engine && clio-engine bench --suite embed") from None
    return bench_main(args.rest)
