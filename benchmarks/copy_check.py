"""How often the copy check refuses an LLM answer, on text it should and should not refuse (issue 11).

`privacy.auditor.copies_shown` refuses a name or description that holds `COPY_WORDS` (8) consecutive words of
a text shown to the model, or — the gapped check — 8 words of one text in order, each within `COPY_GAP` (2)
positions of the last. Without a capable model here, two stand-ins bound what it does, per gold intent of
banking77 and hwu64 (the texts shown: 50 of the intent's distinct texts, fixed-seed shuffle, as
`naming.in_examples`):

- *should refuse*: each shown text of ≥ 8 words, edited as a model might copy it — one word dropped, one
  inserted, or one changed in every three; the share caught (consecutive only, and with the gapped check);
- *other people's phrasing*: the intent's texts not shown (other users asking the same thing in their own
  words); the share refused is an upper bound on refusals of answers that copy nobody, since an answer
  paraphrasing a cluster is rarely as close to one text as another user's text of the same intent.

    PYTHONPATH=. python -m benchmarks.copy_check [--shown 50] [--output benchmarks/results/copy_check.json]
"""
from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

from clio_engine.device import cpu_model

REPO = Path(__file__).resolve().parent.parent
SETS = {"banking77": "banking77.csv.gz", "hwu64": "hwu64.csv.gz"}


def edits(words: list[str], rng: np.random.Generator) -> dict[str, str]:
    """Three copies of a text as a model might make them: a word dropped, a word inserted, one word in three
    replaced."""
    i = int(rng.integers(1, len(words) - 1))
    changed = [("zzword" if j % 3 == 1 else w) for j, w in enumerate(words)]
    return {"dropped": " ".join(words[:i] + words[i + 1:]), "inserted": " ".join(words[:i] + ["also"] + words[i:]),
            "every third changed": " ".join(changed)}


def measure(texts_by_intent: dict[str, list[str]], n_shown: int, seed: int = 0) -> dict:
    from clio_engine.privacy.auditor import COPY_WORDS, _words, copies_shown, shown_grams

    rng = np.random.default_rng(seed)
    caught = {kind: [0, 0, 0] for kind in ("dropped", "inserted", "every third changed")}  # consecutive, gapped, n
    others = [0, 0, 0]  # refused consecutive, refused gapped, n
    for texts in texts_by_intent.values():
        texts = list(dict.fromkeys(texts))
        rng.shuffle(texts)
        shown, held = texts[:n_shown], texts[n_shown:]
        grams = shown_grams(shown)
        plain = set(grams)  # the consecutive check alone
        for text in shown:
            words = _words(text)
            if len(words) < COPY_WORDS + 1:
                continue
            for kind, copy in edits(words, rng).items():
                caught[kind][0] += copies_shown(copy, plain)
                caught[kind][1] += copies_shown(copy, grams)
                caught[kind][2] += 1
        for text in held:
            others[0] += copies_shown(text, plain)
            others[1] += copies_shown(text, grams)
            others[2] += 1
    share = lambda hit, n: round(hit / n, 4) if n else None  # noqa: E731
    return {"should_refuse": {kind: {"copies": n, "caught_consecutive": share(c, n), "caught_gapped": share(g, n)}
                              for kind, (c, g, n) in caught.items()},
            "other_peoples_phrasing": {"texts": others[2], "refused_consecutive": share(others[0], others[2]),
                                       "refused_gapped": share(others[1], others[2])}}


def main(argv: list[str] | None = None) -> dict:
    import pandas as pd

    from benchmarks.data import data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shown", type=int, default=50)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results" / "copy_check.json")
    args = parser.parse_args(argv)
    report = {"date": date.today().isoformat(), "machine": cpu_model(),
              "command": "PYTHONPATH=. python -m benchmarks.copy_check" + (f" --shown {args.shown}" if args.shown != 50 else ""),
              "shown_per_intent": args.shown, "sets": {}}
    for name, file in SETS.items():
        frame = pd.read_csv(data_dir() / file, keep_default_na=False)
        by_intent = {label: group["text"].tolist() for label, group in frame.groupby("label")}
        report["sets"][name] = measure(by_intent, args.shown)
        r = report["sets"][name]
        print(f"{name}: other people's phrasing refused {r['other_peoples_phrasing']['refused_consecutive']:.1%} "
              f"(consecutive) / {r['other_peoples_phrasing']['refused_gapped']:.1%} (gapped) of "
              f"{r['other_peoples_phrasing']['texts']}; edited copies caught "
              + ", ".join(f"{k} {v['caught_consecutive']:.1%} / {v['caught_gapped']:.1%}"
                          for k, v in r["should_refuse"].items()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
