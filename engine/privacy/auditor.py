"""The privacy auditor (`privacy.auditor: true`): an LLM scores every published name on a 1–5 privacy scale.

    names, report = audit_names(cfg, names_per_level)

Each published node's name, description and examples are scored (`audit_prompts.AUDIT_SYSTEM`: 1 = points
to a person, 5 = fully general). Below `privacy.auditor_min_score` the node is renamed once — the model
rewrites name and description more generally, without seeing the examples — and the new summary (with the
same examples) is scored again. Still below, or any call failed (fail closed: an unanswered audit never
passes), and the node is withheld: its name becomes `WITHHELD`, its description, keywords and examples
empty. Counts are untouched (the thresholds decided what is published; the auditor only decides what it
is called). `cfg` needs `privacy.auditor_min_score`, `privacy.scrubber`, the `llm` section and `seed`.

report: {"audited", "renamed", "withheld", "scores" {first score: count}, "reasons" {why withheld: count},
"llm": usage}; it holds counts only, never text.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from clio_engine.llm.formats import Fields, Score
from clio_engine.llm.types import Request
from clio_engine.privacy.audit_prompts import AUDIT_SYSTEM, RENAME_SYSTEM, audit_prompt, rename_prompt

WITHHELD = "Withheld by the privacy auditor"
STAGE = "audit"
SCORE = Score(1, 5)
RENAME = Fields(("name", "description"), max_words=(10, 80))
MAX_WORDS = 10


def audit_names(cfg, names_per_level: list[list]) -> tuple[list[list], dict]:
    """(names with flagged nodes renamed or withheld, report); `names_per_level[l][n]` a NodeName or None."""
    from clio_engine.privacy import make_scrubber

    minimum, scrubber = int(cfg.privacy.auditor_min_score), make_scrubber(cfg.privacy.scrubber)
    usage: dict = {}
    where = [(l, n) for l, level in enumerate(names_per_level) for n, nm in enumerate(level) if nm is not None]
    out = [list(level) for level in names_per_level]
    first, usage = _scores(cfg, [out[l][n] for l, n in where], usage)
    scores = Counter(str(s) for s in first if s is not None)
    flagged = [i for i, s in enumerate(first) if s is None or s < minimum]
    renames, usage = _renames(cfg, [out[where[i][0]][where[i][1]] for i in flagged], usage)
    reasons: Counter = Counter()
    renamed = [(i, nm) for i, nm in zip(flagged, renames) if nm is not None]
    if len(flagged) > len(renamed):
        reasons["rename failed"] += len(flagged) - len(renamed)
    candidates = []
    for i, answer in renamed:
        l, n = where[i]
        name, description = answer
        candidates.append(replace(out[l][n], name=scrubber.scrub(name), description=scrubber.scrub(description)))
    second, usage = _scores(cfg, candidates, usage)
    passed = set()
    for (i, _), nm, score in zip(renamed, candidates, second):
        l, n = where[i]
        if score is not None and score >= minimum:
            out[l][n] = nm
            passed.add(i)
        else:
            reasons["audit failed" if score is None else "score below minimum after renaming"] += 1
    for i in flagged:
        if i not in passed:
            l, n = where[i]
            out[l][n] = replace(out[l][n], name=WITHHELD, description="", keywords=[], examples=[])
    report = {"audited": len(where), "min_score": minimum, "flagged": len(flagged), "renamed": len(passed),
              "withheld": len(flagged) - len(passed), "scores": dict(sorted(scores.items())),
              "failed_audits": sum(s is None for s in first), "reasons": dict(sorted(reasons.items())), "llm": usage}
    return out, report


def _scores(cfg, names: list, usage: dict) -> tuple[list[int | None], dict]:
    """Privacy score per NodeName (None where the call failed) and the usage so far."""
    from clio_engine.llm.session import ask, merge_usage

    if not names:
        return [], usage
    requests = [Request.user(audit_prompt(nm.name, nm.description, nm.examples), system=AUDIT_SYSTEM, schema=SCORE,
                             max_tokens=min(48, int(cfg.llm.max_tokens))) for nm in names]
    results, part = ask(cfg, requests, STAGE)
    return [r.parsed if r.ok else None for r in results], merge_usage(usage, part)


def _renames(cfg, names: list, usage: dict) -> tuple[list[tuple[str, str] | None], dict]:
    """(name ≤ 10 words, description) per NodeName, None where the call failed, and the usage so far."""
    from clio_engine.llm.session import ask, merge_usage

    if not names:
        return [], usage
    requests = [Request.user(rename_prompt(nm.name, nm.description), system=RENAME_SYSTEM, schema=RENAME,
                             max_tokens=min(200, int(cfg.llm.max_tokens))) for nm in names]
    results, part = ask(cfg, requests, STAGE)
    out: list[tuple[str, str] | None] = []
    for r in results:
        name = " ".join(r.parsed["name"].rstrip(" .").split()[:MAX_WORDS]) if r.ok else ""
        out.append((name, r.parsed["description"]) if name else None)
    return out, merge_usage(usage, part)
