"""What `clio-engine serve-llm` costs over calling the model in-process, and what its batching buys.

The same greedy requests (hwu64 utterances, "Reply in a few words: ..."; `--requests`, `--max-tokens`)
go through the engine's `Generator` twice per server batch size: to the `transformers` backend in this
process, and over HTTP through the `openai` backend to a `ModelServer` on 127.0.0.1 holding the same
loaded model. Both paths keep `--concurrency` requests in flight. Reported per batch size: median
seconds over `--rounds`, calls/s, the served/in-process ratio, and whether every answer is identical.

    PYTHONPATH=. python -m benchmarks.serve_llm [--batch-sizes 1 8 32] [--requests 32] [--max-tokens 16]
        [--rounds 2] [--concurrency 32] [--output benchmarks/results/serve_llm.json]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

from benchmarks.data import REPO, data_dir


def requests_from_hwu64(n: int, max_tokens: int):
    import pandas as pd

    from clio_engine.llm import Request

    texts = pd.read_csv(data_dir() / "hwu64.csv.gz")["text"].astype(str).head(n).tolist()
    return [Request.user(f"Reply in a few words: {t}", max_tokens=max_tokens, temperature=0) for t in texts]


def timed(generator, requests) -> tuple[float, list]:
    t0 = time.perf_counter()
    results = generator.generate(requests)
    seconds = time.perf_counter() - t0
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{len(failed)} requests failed, first: {failed[0]}")
    return seconds, results


def run(batch_sizes, n_requests: int, max_tokens: int, rounds: int, concurrency: int) -> list[dict]:
    from clio_engine.llm import Generator
    from clio_engine.llm.backends.openai import OpenAIBackend
    from clio_engine.llm.backends.transformers import TransformersBackend
    from clio_engine.llm.serve import ModelServer

    requests = requests_from_hwu64(n_requests, max_tokens)
    rows = []
    for batch in batch_sizes:
        local = Generator(TransformersBackend(None, device="cpu", batch_size=batch), max_concurrency=concurrency,
                          progress=False)
        with ModelServer(None, model_name="bench", port=0, device="cpu", batch_size=batch) as server:
            server.serve_in_background()
            served = Generator(OpenAIBackend("bench", base_url=server.url, timeout_s=3600), max_concurrency=concurrency,
                               progress=False, backoff_s=0.0)
            timed(local, requests[:2])  # warm both paths (first generate() of a batch shape)
            timed(served, requests[:2])
            local_s, served_s, same = [], [], True
            for _ in range(rounds):  # alternate, so drift of the shared machine hits both
                seconds, a = timed(local, requests)
                local_s.append(seconds)
                seconds, b = timed(served, requests)
                served_s.append(seconds)
                same &= [r.text for r in a] == [r.text for r in b]
        row = {"batch_size": batch, "in_process_s": statistics.median(local_s), "served_s": statistics.median(served_s),
               "in_process_calls_per_s": n_requests / statistics.median(local_s),
               "served_calls_per_s": n_requests / statistics.median(served_s),
               "served_over_in_process": statistics.median(served_s) / statistics.median(local_s),
               "identical_answers": same, "rounds_s": {"in_process": local_s, "served": served_s}}
        rows.append(row)
        print(f"batch {batch}: in-process {row['in_process_s']:.2f} s, served {row['served_s']:.2f} s "
              f"(×{row['served_over_in_process']:.2f}), identical {same}", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| server batch size | in-process s (calls/s) | served over HTTP s (calls/s) | served / in-process | identical answers |",
             "|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['batch_size']} | {r['in_process_s']:.2f} ({r['in_process_calls_per_s']:.1f}) | "
                     f"{r['served_s']:.2f} ({r['served_calls_per_s']:.1f}) | {r['served_over_in_process']:.2f} | "
                     f"{'yes' if r['identical_answers'] else 'NO'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "serve_llm.json"))
    args = parser.parse_args(argv)
    if min(args.batch_sizes + [args.requests, args.max_tokens, args.rounds, args.concurrency]) < 1:
        parser.error("every count must be ≥ 1")
    rows = run(args.batch_sizes, args.requests, args.max_tokens, args.rounds, args.concurrency)
    md = table(rows)
    print(md)
    report = {"benchmark": "serve_llm", "date": _dt.date.today().isoformat(),
              "command": "PYTHONPATH=. python -m benchmarks.serve_llm " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": {"platform": platform.platform(), "python": platform.python_version()},
              "requests": args.requests, "max_tokens": args.max_tokens, "concurrency": args.concurrency, "rows": rows,
              "table": md}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
