"""Readability faults of a demo run's published names (issue 11): names cut off mid-phrase, and names holding
the frame every Clio-style summary shares.

A name is split at ", " into its phrases. A phrase is a *piece* of a longer one where one word follows it, or
precedes it, in more than 90% of its uses over the demo's texts: a plain count of every phrase of up to 4 words
(`text_phrases`), independent of the namer's vocabulary pruning ("lean" in "Draft one-page lean, canvas"). A
*frame word* is "user", "assistant", "asked", "requested" or "wants" anywhere in a name. A *keyword pair* is
a name of two phrases one of which is a lone word ("Chapters, explain", "Delay, email"): it reads as a list of
keywords, not as a phrase. A parent *like a child* has two children or more and the words of one of them, in any
order or inflection (`naming.keywords.name_key`): "Window functions, calculate running totals" over "Calculating
running totals, window functions" reads as that child alone (Other rows, named after their parent, left out).

The texts are regenerated from the run's manifest (`input.synthetic_records`, `seed`), so only runs of
`clio-engine demo` (the synthetic generator) can be read.

    PYTHONPATH=. python -m benchmarks.name_readability RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd

SHARE = 0.9
FRAME = re.compile(r"\b(?:assistant|user|asked|requested|wants)\b", re.IGNORECASE)


def continuation_counts(texts: list[str]) -> tuple[Counter, Counter]:
    """(uses of each phrase of ≤ 4 words, the count of its commonest one-word-longer continuation either side)."""
    from clio_engine.naming.phrases import text_phrases

    uses = Counter(p for t in texts for p in text_phrases(t, 4))
    longest: Counter = Counter()
    for phrase, n in uses.items():
        words = phrase.split()
        for part in (" ".join(words[:-1]), " ".join(words[1:])):
            if part:
                longest[part] = max(longest[part], n)
    return uses, longest


def faults(names: pd.Series, uses: Counter, longest: Counter) -> dict:
    """Counts of published names holding a piece of a longer phrase or a frame word, with up to 5 examples."""
    def has_piece(name: str) -> bool:
        return any(uses[p] and longest[p] > SHARE * uses[p] for p in (x.strip().lower() for x in name.split(",")))

    pieces = [n for n in names if has_piece(n)]
    frames = [n for n in names if FRAME.search(n)]
    lone = [n for n in names if "," in n and any(len(p.split()) == 1 for p in n.split(","))]
    return {"names": len(names), "with_piece": len(pieces), "with_frame_word": len(frames),
            "keyword_pairs": len(lone), "unnamed": int(names.str.startswith("Cluster ").sum()),
            "piece_examples": pieces[:5], "frame_examples": frames[:5], "keyword_pair_examples": lone[:5]}


def parents_like_a_child(published: pd.DataFrame) -> dict:
    """How many published parents of ≥ 2 children are named with one child's words, with up to 5 examples."""
    from clio_engine.naming.keywords import name_key

    names = published.set_index("id")["name"]
    children = published[published["parent"].notna() & (published["kind"] != "other")]
    counts = published["parent"].value_counts()
    found = sorted({(names[p], c) for p, c in zip(children["parent"], children["name"])
                    if p in names.index and counts[p] >= 2 and name_key(names[p]) == name_key(c)})
    return {"parents": int((counts >= 2).sum()), "parent_like_child": len(found), "parent_like_child_examples": found[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    from clio_engine.datasets import generate_conversations

    texts_of: dict[tuple[int, int], tuple[Counter, Counter]] = {}
    for run in args.runs:
        config = json.loads((run / "manifest.json").read_text())["config"]
        key = (config["input"]["synthetic_records"], config["seed"])
        if key not in texts_of:
            texts_of[key] = continuation_counts(generate_conversations(key[0], seed=key[1])["text"].tolist())
        clusters = pd.read_parquet(run / "clusters.parquet")
        published = clusters[clusters["published"]]
        print(json.dumps({"run": str(run), **faults(published["name"], *texts_of[key]),
                          **parents_like_a_child(published)}))


if __name__ == "__main__":
    main()
