"""`clio-engine`'s entry point: parse the arguments, run the subcommand, and turn what it raises into one
line and an exit code."""
from __future__ import annotations

import errno
import logging
import os
import sys
import traceback

from clio_engine.cli.commands import _cmd_bench
from clio_engine.cli.exit_codes import EXIT_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_PIPE_CLOSED
from clio_engine.cli.parser import _parser, _subcommand
from clio_engine.errors import ClioError


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
