"""`clio-engine` command line (the console script runs `main`; `python -m clio_engine.cli` too).

Modules, one job each:
- `entry`: `main`, which parses, runs the subcommand and turns what it raises into one line and an exit code.
- `parser`: the argparse parser, its subcommands and options; `arg_types`: the options' argparse types.
- `exit_codes`: the exit codes and the `--help` epilog that lists them.
- `options`: the config a command runs with (config file or preset, options and --set over it).
- `commands`: the subcommand handlers (`explore` and `serve-llm` live in `clio_engine.cli_serve`).
- `summary`: what a finished run prints.
"""
from __future__ import annotations

from clio_engine.cli.arg_types import _setting
from clio_engine.cli.entry import main
from clio_engine.cli.exit_codes import (EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_PIPE_CLOSED,
                                        EXIT_USAGE, EXIT_VIOLATIONS)
from clio_engine.cli.options import DEVICE_KEYS, _config, demo_overrides
from clio_engine.cli.parser import _parser, distribution_version
from clio_engine.cli.summary import _print_summary, _top_reasons

__all__ = ["DEVICE_KEYS", "EXIT_INPUT", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PIPE_CLOSED", "EXIT_USAGE",
           "EXIT_VIOLATIONS", "_config", "_parser", "_print_summary", "_setting", "_top_reasons", "demo_overrides",
           "distribution_version", "main"]
