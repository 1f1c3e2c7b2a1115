"""Every LLM stage against an OpenAI-compatible server that constrains decoding (vLLM, SGLang, llama.cpp), with
and without the engine's constraints (`llm.server_writes_labels`): per stage, the calls, re-asks and answers that
failed to parse, and the run's time.

The run: `--conversations` synthetic conversations (OpenAI-style messages), all five facets extracted, k-means
into `--k` clusters, LLM names, the clio hierarchy and the privacy auditor, the default embedder. Each mode gets a
fresh run directory, so nothing is answered from the cache; the modes alternate per round (the first run of all
pays the cold start: the embedder's load, the server's empty prefix cache), so report the median of each.

    PYTHONPATH=. python -m benchmarks.constrained_stages --base-url http://127.0.0.1:8000/v1 --server vllm
        [--model smollm2] [--conversations 40] [--rounds 2] [--output benchmarks/results/constrained_stages.json]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.data import REPO

STAGES = ("facets", "hierarchy", "names")
FACETS = ["request", "task", "language", "concerning", "collaboration"]
REPLIES = ["Here is how you could do it, step by step.", "Sure. The short answer is yes, with two caveats.",
           "I can help with that. First, a question: what have you tried?"]


def write_conversations(path: Path, n: int, seed: int) -> None:
    """`n` conversations as JSONL: each a synthetic user request, an assistant reply and, for every fourth, a
    follow-up turn; `id` and `user_id` columns."""
    from clio_engine import generate_conversations

    rows = []
    for i, row in enumerate(generate_conversations(n, seed=seed).itertuples()):
        messages = [{"role": "user", "content": row.text}, {"role": "assistant", "content": REPLIES[i % 3]}]
        if i % 4 == 0:
            messages += [{"role": "user", "content": "Could you make it shorter?"}, {"role": "assistant", "content": "Yes."}]
        rows.append({"id": row.id, "user_id": row.user_id, "messages": messages})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def one_run(src: Path, out: Path, args, constrained: bool) -> dict:
    from clio_engine.pipeline import run

    overrides = {"seed": 1, "embed.progress": False, "input.user_column": "user_id", "facets.extract": True,
                 "facets.fields": FACETS, "naming.strategy": "llm", "naming.in_examples": 5, "naming.out_examples": 2,
                 "hierarchy.mode": "clio", "hierarchy.levels": 2, "hierarchy.top": 2, "privacy.auditor": True,
                 "privacy.min_users": 2, "privacy.min_records": 3, "cluster.k": args.k, "llm.progress": False,
                 "llm.backend": "openai", "llm.model": args.model, "llm.base_url": args.base_url,
                 "llm.server_writes_labels": args.server if constrained else False, "llm.max_tokens": 48,
                 "llm.max_concurrency": 16, "llm.timeout_s": 600, "llm.backoff_s": 0.0}
    started = time.perf_counter()
    result = run(None, input=str(src), out=out, overrides=overrides)
    seconds = time.perf_counter() - started
    usage, stages = result.manifest["llm"]["stages"], result.manifest["stages"]
    auditor = stages["names"]["auditor"]
    return {"run_s": round(seconds, 1),
            "stages": {s: {k: usage[s][k] for k in ("requests", "calls", "reasks", "failures", "failure_reasons",
                                                    "completion_tokens", "wall_s")} for s in STAGES if s in usage},
            "facet_failures": stages["facets"]["failed"],
            "auditor": {k: auditor[k] for k in ("audited", "withheld", "failed_audits", "scores")} | {
                "failures": auditor["llm"]["failures"], "calls": auditor["llm"]["calls"]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--server", choices=("vllm", "sglang", "llama.cpp"), required=True)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)  # even: each mode runs first once
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "constrained_stages.json")
    args = parser.parse_args(argv)
    runs: dict[str, list] = {"constrained": [], "unconstrained": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "conversations.jsonl"
        write_conversations(src, args.conversations, args.seed)
        for r in range(args.rounds):
            for mode in (("constrained", "unconstrained") if r % 2 == 0 else ("unconstrained", "constrained")):
                runs[mode].append(one_run(src, Path(tmp) / f"run_{mode}_{r}", args, mode == "constrained"))
                print(mode, json.dumps(runs[mode][-1]), flush=True)
    result = {"runs": runs, "server": args.server, "conversations": args.conversations,
              "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="minutes"),
              "machine": platform.processor() or platform.machine(),
              "command": "PYTHONPATH=. python -m benchmarks.constrained_stages " + shlex.join(argv or sys.argv[1:])}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
