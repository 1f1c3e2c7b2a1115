"""What a conversation record's text should be (`input.conversation_text`): the whole transcript, or the user's
turns alone, when some conversations use tools and the assistant's replies are formulaic.

Conversations are built from the synthetic Clio-style summaries (their known `topic` is the truth): each
request becomes the user's first turn; a seeded third of the conversations, drawn independently of the topic,
call a tool ("[tool call]", "[tool result]" turns) before a fixed reply, the rest get one of a few fixed
replies; every fourth adds a follow-up. The same records are run twice through the pipeline with the default
model and the same k, once per `conversation_text`. Reported per run: NMI of the base clusters against the
topic (higher: clusters follow what was asked) and against the tool flag (higher: clusters follow the
conversation's shape), and the largest share of all tool-using conversations that one cluster holds.

    PYTHONPATH=. python -m benchmarks.conversation_text [--records 2000] [--k 40] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import normalized_mutual_info_score as nmi

from clio_engine import generate_conversations, run
from clio_engine.device import cpu_model

REPLIES = ("Sure, here is what I would suggest.", "Happy to help with that.", "Let me walk you through it.")
TOOL_REPLY = "I looked that up for you; here is what I found."
FOLLOW_UP = "Thanks, can you say more about the second point?"


def conversations(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(frame of id, user_id, messages; [N] topic; [N] bool uses a tool)."""
    frame = generate_conversations(n, seed=seed)
    rng = np.random.default_rng(seed)
    tools = rng.random(n) < 1 / 3
    rows = []
    for i, (text, tool) in enumerate(zip(frame.text, tools)):
        request = text.replace("The user's overall request is to ", "Please help me ").rstrip(".") + "."
        turns = [{"role": "user", "content": request}]
        if tool:
            turns += [{"role": "assistant", "content": None, "tool_calls": [{"id": f"c{i}"}]},
                      {"role": "tool", "content": "result", "tool_call_id": f"c{i}"},
                      {"role": "assistant", "content": TOOL_REPLY}]
        else:
            turns.append({"role": "assistant", "content": REPLIES[i % len(REPLIES)]})
        if i % 4 == 0:
            turns += [{"role": "user", "content": FOLLOW_UP}, {"role": "assistant", "content": REPLIES[0]}]
        rows.append(turns)
    out = pd.DataFrame({"id": frame.id, "user_id": frame.user_id, "messages": rows})
    return out, frame.topic.to_numpy(), tools


def measure(frame, topic, tools, mode: str, k: int, out: Path, seed: int) -> dict:
    started = time.perf_counter()
    result = run(None, input=frame, out=out, overrides={"seed": seed,
        "input.conversation_text": mode, "cluster.k": k, "hierarchy.levels": 1, "embed.progress": False,
        "output.explorer": False, "privacy.min_users": 1, "privacy.min_records": 1})
    seconds = time.perf_counter() - started
    labels = result.assignments.set_index("id").loc[frame.id, "level_0"].to_numpy()
    tool_clusters = pd.Series(labels[tools]).value_counts()
    return {"mode": mode, "nmi_topic": round(nmi(topic, labels), 4), "nmi_tool": round(nmi(tools, labels), 4),
            "largest_tool_share": round(float(tool_clusters.iloc[0] / tools.sum()), 4), "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=2000)
    ap.add_argument("--k", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    rows = []
    for seed in args.seeds:  # one data set per seed (the conversations, the tool draw and the run's seed)
        frame, topic, tools = conversations(args.records, seed)
        with tempfile.TemporaryDirectory() as tmp:
            rows += [{"seed": seed, **measure(frame, topic, tools, mode, args.k, Path(tmp) / mode, seed)}
                     for mode in ("transcript", "user")]
    table = pd.DataFrame(rows)
    medians = table.groupby("mode")[["nmi_topic", "nmi_tool", "largest_tool_share", "seconds"]].median()
    print(json.dumps({"date": str(date.today()), "machine": f"{cpu_model()}, {os.cpu_count()} cores",
                      "records": args.records, "k": args.k, "seeds": args.seeds, "runs": rows,
                      "medians": medians.round(4).to_dict(orient="index")}, indent=1))


if __name__ == "__main__":
    main()
