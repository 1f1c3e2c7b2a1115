"""The privacy auditor (`privacy.auditor: true`): an LLM scores every published name on a 1–5 privacy scale.

    names, report = audit_names(cfg, names_per_level)

Each published node's name, description, keywords and examples are scored (`audit_prompts.AUDIT_SYSTEM`:
1 = points to a person, 5 = fully general). Below `privacy.auditor_min_score` the node is renamed once — the
model rewrites name and description more generally, without seeing the examples — and the new summary (with
the same examples, and no keywords: they came from the flagged summary, and a sibling whose name repeats
is then suffixed with its node index, never an unaudited word) is scored again. Still below, or any call
failed (fail closed: an unanswered audit never passes), and the node is withheld: its name becomes
`WITHHELD` — "WITHHELD (2)", "WITHHELD (3)", … for the second, third, … withheld node of a level, so that
withheld siblings keep distinct names — its description, keywords and examples empty. Counts are untouched (the thresholds decided what is published; the auditor
only decides what it is called). `cfg` needs `privacy.auditor_min_score`, `privacy.scrubber`, the `llm`
section and `seed`.

A score is read by `Score` (formats.py): a reply naming several numbers in range is malformed, re-asked
once and then a failed audit, so it never passes. A rename is held to the namer's rules
(`usable_answer`: invisible characters removed, a character cap, no copy of
`COPY_WORDS` consecutive words of the node's examples, which the auditor was shown, nor of `COPY_WORDS` words
of one example in order with at most one of its words dropped or changed between matched ones, or up to two
words inserted; "_" separates words; and no word that fewer than `privacy.min_users` users wrote, unless it is
common English, `rare_words`); one that breaks them is a failed rename, counted by its reason.

report: {"audited", "renamed", "withheld", "scores" {first score: count}, "reasons" {why withheld: count},
"llm": usage}; it holds counts only, never text.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import replace
from typing import Iterable

import numpy as np

from clio_engine.llm.formats import Fields, Score
from clio_engine.llm.types import Request
from clio_engine.privacy.audit_prompts import AUDIT_SYSTEM, RENAME_SYSTEM, audit_prompt, rename_prompt
from clio_engine.privacy.escape import neutralise
from clio_engine.word_split import bigrams, has_spaceless, spaceless_runs, spaceless_segments, spaceless_units

WITHHELD = "Withheld by the privacy auditor"
STAGE = "audit"
SCORE = Score(1, 5)
RENAME = Fields(("name", "description"), max_words=(10, 80))
MAX_WORDS = 10
# What an LLM name or description may be (the namer's answers and the renames here): one 1 MB "word" is
# still one word, so characters are capped too; and record text must not reach release/ through it.
MAX_NAME_CHARS = 150          # 10 words of 15 characters; a longer name is an answer gone wrong
MAX_DESCRIPTION_CHARS = 1000  # 80 words of 12 characters
COPY_WORDS = 8                # an answer sharing this many consecutive words with a shown text copies it,
COPY_GAP = 2                  # or this many of one text in order, each ≤ COPY_GAP positions after the last
COPY_GAP_ANSWER = 3           # in the text, and ≤ this many after the last in the answer (filler between copied
#                               words: "… section and so on time off and so …" copied a whole record)
RARE_WORD = "answer holds a word fewer than privacy.min_users users wrote"  # a fallback reason (never the word)


def audit_names(cfg, names_per_level: list[list], rare=frozenset()) -> tuple[list[list], dict]:
    """(names with flagged nodes renamed or withheld, report); `names_per_level[l][n]` a NodeName or None.
    `rare`: words a rename may not hold (`rare_words`), or a function giving them, called only when some node
    is flagged (counting every word's users over a large run for no rename costs more than the audit)."""
    from clio_engine.privacy import make_scrubber

    minimum, scrubber = int(cfg.privacy.auditor_min_score), make_scrubber(cfg.privacy.scrubber)
    usage: dict = {}
    where = [(l, n) for l, level in enumerate(names_per_level) for n, nm in enumerate(level) if nm is not None]
    out = [list(level) for level in names_per_level]
    first, usage = _scores(cfg, [out[l][n] for l, n in where], usage)
    scores = Counter(str(s) for s in first if s is not None)
    flagged = [i for i, s in enumerate(first) if s is None or s < minimum]
    if callable(rare):
        rare = rare() if flagged else frozenset()
    renames, usage = _renames(cfg, [out[where[i][0]][where[i][1]] for i in flagged], usage, scrubber, rare)
    reasons: Counter = Counter(why for answer, why in renames if answer is None)
    renamed = [(i, answer) for i, (answer, _) in zip(flagged, renames) if answer is not None]
    candidates = []
    for i, answer in renamed:
        l, n = where[i]
        name, description = answer  # already neutralised and scrubbed
        candidates.append(replace(out[l][n], name=name, description=description, keywords=[]))
    second, usage = _scores(cfg, candidates, usage)
    passed = set()
    for (i, _), nm, score in zip(renamed, candidates, second):
        l, n = where[i]
        if score is not None and score >= minimum:
            out[l][n] = nm
            passed.add(i)
        else:
            reasons["audit failed" if score is None else "score below minimum after renaming"] += 1
    withheld: Counter = Counter()  # per level: siblings' names must differ (the tree is not known here)
    for i in flagged:
        if i not in passed:
            l, n = where[i]
            withheld[l] += 1
            name = WITHHELD if withheld[l] == 1 else f"{WITHHELD} ({withheld[l]})"
            out[l][n] = replace(out[l][n], name=name, description="", keywords=[], examples=[])
    report = {"audited": len(where), "min_score": minimum, "flagged": len(flagged), "renamed": len(passed),
              "withheld": len(flagged) - len(passed), "scores": dict(sorted(scores.items())),
              "failed_audits": sum(s is None for s in first), "reasons": dict(sorted(reasons.items())), "llm": usage}
    return out, report


def _scores(cfg, names: list, usage: dict) -> tuple[list[int | None], dict]:
    """Privacy score per NodeName (None where the call failed) and the usage so far."""
    from clio_engine.llm.session import ask, merge_usage

    if not names:
        return [], usage
    requests = [Request.user(audit_prompt(nm.name, nm.description, nm.examples, nm.keywords), system=AUDIT_SYSTEM,
                             schema=SCORE,
                             max_tokens=min(48, int(cfg.llm.max_tokens))) for nm in names]
    results, part = ask(cfg, requests, STAGE)
    return [r.parsed if r.ok else None for r in results], merge_usage(usage, part)


def _renames(cfg, names: list, usage: dict, scrubber,
             rare: frozenset[str] = frozenset()) -> tuple[list[tuple[tuple[str, str] | None, str]], dict]:
    """((name ≤ 10 words, description) or None, why not) per NodeName, and the usage so far."""
    from clio_engine.llm.session import ask, merge_usage

    if not names:
        return [], usage
    requests = [Request.user(rename_prompt(nm.name, nm.description), system=RENAME_SYSTEM, schema=RENAME,
                             max_tokens=min(200, int(cfg.llm.max_tokens))) for nm in names]
    results, part = ask(cfg, requests, STAGE)
    out: list[tuple[tuple[str, str] | None, str]] = []
    for r, nm in zip(results, names):
        if not (r.ok and isinstance(r.parsed, dict)):
            out.append((None, "rename failed"))
            continue
        answer, why = usable_answer(r.parsed["name"], r.parsed["description"], shown_grams(nm.examples), scrubber,
                                    rare=rare)
        out.append((answer, "" if answer else f"rename unusable: {why}"))
    return out, merge_usage(usage, part)


_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    """Case-folded words; `_` separates words ("a_b_c" is three, or a copy joined by it would be one word). A run
    of a script written without spaces (Chinese, Japanese, Thai) is its character bigrams, as the namers read it
    (`word_split`): as one word, a whole clause, no name a single user wrote ("王小明") was ever a rare word, and
    no copy of a shown Chinese text ever reached `COPY_WORDS` words. Non-ASCII text is NFKC-normalised first, so
    a full-width copy ("ＪＯＨＮ") is the word it stands for."""
    text = neutralise(text)
    if text.isascii():
        return _WORD.findall(text.casefold())
    text = unicodedata.normalize("NFKC", text).casefold()
    if not has_spaceless(text):
        return _WORD.findall(text)
    words: list[str] = []
    for piece, spaceless in spaceless_segments(text):
        if not spaceless:
            words += _WORD.findall(piece)
            continue
        units = spaceless_units(piece)
        words += bigrams(units) if len(units) > 1 else units
    return words


WHOLE = "\0"  # tags a run of word characters as written, so `rare_words` counts it apart from `_words`' words
PIECE_CHARS = 8  # the longest piece of an answer's spaceless run that is looked up whole (`_rare_keys`)


def _rare_keys(text: str, *, answer: bool = False) -> set[str]:
    """What the rare-word check looks up: the words `_words` reads (full-width forms as ASCII, Chinese and
    Japanese runs as bigrams cut at function words) and, tagged `WHOLE`, every run of word characters as written
    and case-folded (`[^\\W_]+`: "王小明", "はるか", "abc王小明" whole). Each form is counted apart, so a word is
    caught where it is rare in either: the bigrams alone let a rare name through whose pieces others write ("王小明"
    beside "王小姐" and "小明"), or one a function word cuts ("王和平", "はるか"). answer=True adds every piece of 2 to
    `PIECE_CHARS` characters of the answer's spaceless runs, in both forms: a text's rare run ("何明") inside a
    longer run of the answer ("如何明", "何明的问题")."""
    text = neutralise(text)
    keys = set(_words(text))
    if text.isascii():
        return keys  # the same words in both forms
    # An ASCII run is a word of `_words` too, counted there with every English text's: tagged apart, a product name
    # most users write but few beside a curly quote would count as rare, and refuse good answers.
    keys.update(WHOLE + w for w in _WORD.findall(text.casefold()) if not w.isascii())
    if answer:
        for form in {text.casefold(), unicodedata.normalize("NFKC", text).casefold()}:
            for run in spaceless_runs(form):
                units = spaceless_units(run)
                for i in range(len(units) - 1):
                    for j in range(i + 2, min(i + PIECE_CHARS, len(units)) + 1):
                        piece = "".join(units[i:j])
                        keys.update((piece, WHOLE + piece))
    return keys


def rare_words(texts: Iterable[str], user_codes, min_users: int) -> frozenset[str]:
    """The words of the run's texts that fewer than `min_users` distinct users wrote and that are not common
    English words (`common_words`); [N] texts, [N] user codes.

    An LLM answer may not hold one (`usable_answer`): a keyword needs `min_users` users, and a model that copies
    a token one person wrote (a code, a made-up word, an uncommon name) would publish it. A word no text holds is
    the model's own and is allowed, and so is a common word. O(total words); the sets stop growing at
    `min_users`."""
    from clio_engine.privacy.common_words import common_words

    common = common_words()
    users_of: dict[str, set] = {}
    for text, user in zip(texts, np.asarray(user_codes).tolist()):
        for w in _rare_keys(text):
            seen = users_of.get(w)
            if seen is None:
                users_of[w] = {user}
            elif len(seen) < min_users:
                seen.add(user)
    return frozenset(w for w, seen in users_of.items() if len(seen) < min_users and w.removeprefix(WHOLE) not in common)


class ShownGrams(set):
    """`shown_grams`'s answer: the set of every run of `k` consecutive words of the shown texts (as before),
    and `positions`: word → sorted positions [P] int64 of that word in the texts laid end to end, each text
    `COPY_GAP` empty slots after the previous one (so no chain of `copies_shown` crosses from one text into
    the next)."""

    def __init__(self, grams=(), positions: dict | None = None):
        super().__init__(grams)
        self.positions = positions or {}


def shown_grams(texts: Iterable[str], k: int = COPY_WORDS) -> set[tuple[str, ...]]:
    """Every run of `k` consecutive words (case and punctuation ignored) of the texts shown to the model, as a
    `ShownGrams` set that also indexes where each word stands, for the gapped check of `copies_shown`.
    O(total words)."""
    grams: set[tuple[str, ...]] = set()
    ids: dict[str, int] = {}
    codes: list[int] = []
    for text in dict.fromkeys(texts):  # a text shown twice is one text
        words = _words(text)
        grams.update(tuple(words[i:i + k]) for i in range(len(words) - k + 1))
        codes.extend(ids.setdefault(w, len(ids)) for w in words)
        codes.extend([-1] * COPY_GAP)  # empty slots between texts
    code = np.asarray(codes, np.int64)
    order = np.argsort(code, kind="stable")  # positions grouped by word, ascending within a word
    starts = np.searchsorted(code[order], np.arange(len(ids) + 1))
    positions = {w: order[starts[i]:starts[i + 1]] for w, i in ids.items()}
    return ShownGrams(grams, positions)


def copies_shown(answer: str, grams: set, k: int = COPY_WORDS) -> bool:
    """Whether `answer` copies a shown text (`grams` from `shown_grams`): it holds `k` consecutive words of one,
    or — a gapped copy — `k` words of one text in the same order, each within `COPY_GAP` positions of the
    previous matched word in the text and `COPY_GAP_ANSWER` in the answer (so one word dropped or changed, or up
    to two inserted, between any two matched words still chains: "tell her also boss Maria" copies "tell her
    boss Maria").
    Case and punctuation are ignored. Words shared with *several* texts never chain across texts, so a name
    built from a cluster's common short phrases is not a copy.

    The gapped check is a dynamic programme over (answer word, text position) pairs: the longest chain ending
    at each position where answer word i occurs, from the chains of words i−1 … i−COPY_GAP, found by binary
    search — O(Σ occurrences of the answer's words × log), vectorised per answer word."""
    if not grams:
        return False
    words = _words(answer)
    if any(tuple(words[i:i + k]) in grams for i in range(len(words) - k + 1)):
        return True
    index = getattr(grams, "positions", None)
    if not index:
        return False  # a plain set of k-grams: the consecutive check only
    empty = np.zeros(0, np.int64)
    recent: list[tuple[np.ndarray, np.ndarray]] = []  # (positions, chain lengths) of the last COPY_GAP_ANSWER words
    for w in words:
        pos = index.get(w, empty)
        best = np.ones(len(pos), np.int64)
        if len(pos):
            for prev_pos, prev_len in recent:
                if not len(prev_pos):
                    continue
                for d in range(1, COPY_GAP + 1):
                    j = np.searchsorted(prev_pos, pos - d)
                    jc = np.minimum(j, len(prev_pos) - 1)
                    hit = prev_pos[jc] == pos - d
                    best = np.maximum(best, np.where(hit, prev_len[jc] + 1, 1))
            if best.max() >= k:
                return True
        recent = [*recent, (pos, best)][-COPY_GAP_ANSWER:]
    return False


def usable_answer(name: str, description: str, grams: set, scrubber, max_words: int = MAX_WORDS,
                  rare: frozenset[str] = frozenset()) -> tuple[tuple[str, str] | None, str]:
    """((name, description), "") for a model's answer fit to publish — invisible characters removed, the
    name cut to `max_words` words, both scrubbed — else (None, why). Used for the LLM namer's answers
    (naming/llm.py) and the auditor's renames. `rare`: words the answer may not hold (`rare_words`)."""
    name = " ".join(neutralise(name).rstrip(" .").split()[:max_words])
    description = " ".join(neutralise(description).split())
    if not name.strip():
        return None, "empty name"
    if len(name) > MAX_NAME_CHARS:
        return None, "name too long"
    if len(description) > MAX_DESCRIPTION_CHARS:
        return None, "description too long"
    if copies_shown(name, grams) or copies_shown(description, grams):
        return None, "answer copies a shown text"
    if rare and not rare.isdisjoint(_rare_keys(name + " " + description, answer=True)):
        return None, RARE_WORD
    name = scrubber.scrub(name)
    if not name.strip():
        return None, "empty name"
    return (name, scrubber.scrub(description)), ""
