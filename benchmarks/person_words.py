"""What the namers' person-name check (`naming.written_case`) drops on real corpora, beyond the lower-case check.

For each set: every phrase of ≤ 3 words that ≥ 5 texts hold (`phrase_terms`), checked with the Presidio scrubber
once as it is (the check before session 56) and once with `written_case` (each capitalised word read in three
of its uses as written, in a window around it). Prints the phrases only the new check drops and both times; a
dropped phrase is either a person's name (wanted) or a false drop (a product or place spaCy took for a person).

    PYTHONPATH=. python -m benchmarks.person_words stackoverflow_titles arena_hard_v2_0_prompts twenty_newsgroups banking77 hwu64
"""
from __future__ import annotations

import argparse
import time

from benchmarks.data import data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--texts", type=int, default=30_000, help="first N texts of each set")
    args = parser.parse_args()
    import pandas as pd

    from clio_engine.naming.phrases import phrase_terms
    from clio_engine.naming.written_case import WrittenCase, clean_terms
    from clio_engine.privacy import make_scrubber

    scrubber = make_scrubber("presidio")
    for name in args.sets:
        frame = pd.read_csv(data_dir() / f"{name}.csv.gz")
        texts = frame["text" if "text" in frame else frame.columns[0]].astype(str).tolist()[:args.texts]
        _, vocab = phrase_terms(texts, min_df=5)
        vocab = list(vocab)
        start = time.perf_counter()
        before = clean_terms(vocab, scrubber)
        t_before = time.perf_counter() - start
        start = time.perf_counter()
        after = clean_terms(vocab, scrubber, texts, WrittenCase.read(texts))
        t_after = time.perf_counter() - start
        dropped = sorted(v for v in vocab if before[v] and not after[v])
        print(f"{name}: {len(texts)} texts, {len(vocab)} phrases; dropped only by the new check: {len(dropped)}; "
              f"check {t_before:.1f} s → {t_after:.1f} s")
        print("   ", ", ".join(dropped[:80]))


if __name__ == "__main__":
    main()
