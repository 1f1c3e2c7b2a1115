"""Benchmark runner: `python -m benchmarks.run --suite embed [--quick] [--output FILE.json]`.

Every figure is a ratio to a peer measured in the same process and run (SPEC §8). Correctness is
checked first; a contender on a red gate gets no speed ratio and the run exits with status 1.
Progress goes to stderr, the table to stdout, everything measured to the JSON file.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from benchmarks.common import Options, available_suites, load_suite
from benchmarks.harness import probes_for, run_case
from benchmarks.report import format_markdown, format_table, machine_info, write_json


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--suite", action="append", help="suite name (repeatable or comma-separated); see --list")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument("--quick", action="store_true", help="small subsets, one round: a smoke run, not a figure")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 3; 1 with --quick)")
    parser.add_argument("--model", default="default", help="model name or local directory, given to both sides")
    parser.add_argument("--limit", type=int, default=None, help="cap every case at this many items")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for both sides (default: torch's)")
    parser.add_argument("--data-dir", default=None, help="data folder (default $CLIO_DATA_DIR or <repo>/../shared/data)")
    parser.add_argument("--case", action="append", default=None, help="run only the cases with these names")
    parser.add_argument("--output", help="write the results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    if not args.list and not args.suite:
        parser.error("--suite is required (or --list)")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for name in available_suites():
            print(f"{name:12s} {load_suite(name).description}")
        return 0
    options = Options(quick=args.quick, device=args.device, repeats=args.repeats or (1 if args.quick else 3),
                      model=args.model, limit=args.limit, data_dir=args.data_dir)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    machine = machine_info(args.device)
    results = []
    names = [n for arg in args.suite for n in arg.split(",") if n]
    try:
        suites = [load_suite(n) for n in names]
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    for suite in suites:
        for case in suite.build(options):
            if args.case and case.name not in args.case:
                continue
            results.append(run_case(case, repeats=options.repeats, probes=probes_for(args.device)))
            if args.output:  # keep what is measured so far, should a later case crash or time out
                write_json(args.output, machine, asdict(options), results)
    print(f"# {machine['command']}  |  {machine['date']}  |  commit {machine.get('git_commit')}  |  {machine['cpu_model']} ×{machine['cpu_cores_visible']}"
          + (f"  |  {machine['gpu_name']}" if machine.get("gpu_name") else ""))
    print(format_table(results))
    if args.markdown:
        print()
        print(format_markdown(results))
    red = [f"{r.name}/{c}" for r in results for c in r.red]
    if red:
        print(f"\nRED (no speed ratio reported): {', '.join(red)}")
    return 1 if red else 0


if __name__ == "__main__":
    sys.exit(main())
