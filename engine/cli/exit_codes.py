"""The command line's exit codes, and the epilog that lists them under `--help`."""
from __future__ import annotations

# Exit codes (README "Command line" and `clio-engine --help` list them).
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug or an unexpected failure: one line here, the traceback with -v
EXIT_USAGE = 2  # argparse: unknown option, missing argument, malformed --set
EXIT_INPUT = 3  # bad config or input, unwritable output, full disk, busy port: fix what the message names
EXIT_VIOLATIONS = 4  # `audit`: the directory leaks (one line per violation on stdout)
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141  # what a shell reports for a command SIGPIPE ended: the reader of stdout left (`| head`)

EPILOG = f"""exit codes:
  {EXIT_OK}    success
  {EXIT_INTERNAL}    internal error (a bug; -v prints the traceback)
  {EXIT_USAGE}    usage error (unknown option, missing argument, malformed --set)
  {EXIT_INPUT}    bad config or input, or output that cannot be written (unwritable --out, full disk, busy port)
  {EXIT_VIOLATIONS}    audit found privacy violations (each printed on one line)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C; finished stages and chunks are kept, re-run to resume)
  {EXIT_PIPE_CLOSED}  stdout was closed by its reader (e.g. `| head`): stopped quietly, as SIGPIPE would"""
