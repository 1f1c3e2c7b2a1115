"""User-request-style texts written from O*NET task statements, never verbatim.

    paraphrase(["Prepare budgets for the finance office."], split="train", seed=3)
    # ["Morning! I keep getting stuck putting together budgets for the finance office. Where do I start?"]
    paraphrase(["Prepare budgets for the finance office."], split="heldout", seed=0)
    # ["Our team has one person who prepares budgets for the finance office, and this week that's me."]

Each statement is parsed once into a leading verb (with a particle such as "set up", skipping a verb list
such as "Plan, direct, or coordinate") and an object head (the text after the verb, cut at ", ", "; ",
" (", " such as " ...). Each output re-inflects the verb (gerund, third person or a synonym), may swap
common words for synonyms, and wraps the result in an opening, a request template and a closing.

Two disjoint template families: "train" (gerund and imperative requests, longer heads, train synonyms) and
"heldout" (infinitive and third-person requests, heads also cut at purpose/means clauses, other synonyms,
other openings). Mapping accuracy is measured on heldout texts, so the mapper never sees their templates.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from clio_engine.errors import InputError

Split = Literal["train", "heldout"]

# --- verb morphology ----------------------------------------------------------------------------------
# Multi-syllable verbs stressed on the last syllable double their final consonant ("confer" -> "conferring").
_DOUBLE = frozenset("""refer transfer admit permit control commit submit omit equip patrol compel propel occur
prefer confer defer infer regret remit expel excel acquit allot forget begin quit deter incur recur abet
emit transmit""".split())
_IRREGULAR_THIRD = {"be": "is", "have": "has", "do": "does", "go": "goes"}
_PARTICLES = frozenset({"up", "out", "off", "down"})
_LY_VERBS = frozenset({"multiply", "supply", "comply", "apply", "reply"})
_CVC = re.compile(r"[^aeiou]*[aeiou][^aeiouwxy]")


def _gerund(word: str) -> str:
    if word in ("be", "see", "flee", "agree"):
        return word + "ing"
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")):
        return word[:-1] + "ing"
    if word in _DOUBLE or _CVC.fullmatch(word):
        return word + word[-1] + "ing"
    return word + "ing"


def _third(word: str) -> str:
    if word in _IRREGULAR_THIRD:
        return _IRREGULAR_THIRD[word]
    if word.endswith(("s", "sh", "ch", "x", "z", "o")):
        return word + "es"
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


@lru_cache(maxsize=None)
def _inflect(phrase: str, form: str) -> str:
    """Inflect the first word of a verb phrase ("put together" -> "putting together")."""
    head, _, rest = phrase.partition(" ")
    word = head if form == "base" else _gerund(head) if form == "ger" else _third(head)
    return f"{word} {rest}" if rest else word


# --- synonyms: two disjoint choices per word, one for each split ----------------------------------------
# word: (train options, heldout options). Written for this module; deliberately plain office English.
_VERB_SYN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "prepare": (("put together", "draft"), ("pull together", "work up")),
    "develop": (("build", "come up with"), ("create", "work out")),
    "perform": (("carry out", "do"), ("handle", "run")),
    "provide": (("give", "offer"), ("supply", "hand out")),
    "conduct": (("run", "carry out"), ("hold", "lead")),
    "maintain": (("keep up", "look after"), ("upkeep", "take care of")),
    "monitor": (("keep an eye on", "track"), ("watch", "keep tabs on")),
    "inspect": (("check over", "look over"), ("examine", "go over")),
    "review": (("go through", "look over"), ("check", "assess")),
    "operate": (("run", "work"), ("use", "handle")),
    "direct": (("lead", "oversee"), ("manage", "run")),
    "design": (("lay out", "come up with"), ("plan out", "sketch")),
    "analyze": (("make sense of", "break down"), ("dig into", "look into")),
    "evaluate": (("assess", "judge"), ("rate", "weigh up")),
    "confer": (("talk", "meet"), ("consult", "discuss things")),
    "clean": (("wash", "tidy"), ("scrub", "clear")),
    "examine": (("look at", "study"), ("check", "scrutinize")),
    "plan": (("map out", "organize"), ("schedule", "think through")),
    "identify": (("spot", "pin down"), ("find", "figure out")),
    "determine": (("figure out", "work out"), ("decide", "establish")),
    "supervise": (("oversee", "manage"), ("run", "look after")),
    "record": (("log", "write down"), ("note", "keep track of")),
    "write": (("draft", "compose"), ("type up", "pen")),
    "coordinate": (("organize", "line up"), ("arrange", "juggle")),
    "remove": (("take off", "take out"), ("get rid of", "pull")),
    "install": (("put in", "fit"), ("set up", "mount")),
    "select": (("pick", "choose"), ("decide on", "settle on")),
    "collect": (("gather", "pick up"), ("round up", "get")),
    "read": (("go through", "look through"), ("review", "study")),
    "test": (("try out", "check"), ("trial", "verify")),
    "observe": (("watch", "keep watch on"), ("look at", "note")),
    "apply": (("put on", "use"), ("lay on", "add")),
    "create": (("make", "build"), ("produce", "develop")),
    "recommend": (("suggest", "propose"), ("advise on", "put forward")),
    "measure": (("gauge", "size up"), ("quantify", "check")),
    "advise": (("counsel", "guide"), ("coach", "steer")),
    "train": (("teach", "coach"), ("instruct", "tutor")),
    "assist": (("help", "support"), ("back up", "aid")),
    "check": (("verify", "look over"), ("confirm", "double-check")),
    "adjust": (("tweak", "fine-tune"), ("modify", "change")),
    "assess": (("evaluate", "size up"), ("judge", "rate")),
    "arrange": (("organize", "set up"), ("plan", "sort out")),
    "investigate": (("look into", "probe"), ("research", "dig into")),
    "verify": (("confirm", "check"), ("double-check", "validate")),
    "establish": (("set up", "create"), ("build", "found")),
    "repair": (("fix", "mend"), ("patch up", "restore")),
    "teach": (("explain", "coach"), ("instruct", "train")),
    "communicate": (("share", "relay"), ("convey", "pass on")),
    "manage": (("run", "handle"), ("oversee", "direct")),
    "obtain": (("get", "acquire"), ("secure", "fetch")),
    "calculate": (("work out", "compute"), ("figure", "tally")),
    "compile": (("collect", "assemble"), ("gather", "put together")),
    "explain": (("describe", "clarify"), ("walk through", "spell out")),
    "document": (("write up", "record"), ("log", "keep notes on")),
    "estimate": (("ballpark", "approximate"), ("guess at", "project")),
    "organize": (("sort", "arrange"), ("structure", "tidy up")),
    "replace": (("swap out", "change"), ("substitute", "renew")),
    "negotiate": (("bargain over", "hammer out"), ("work out", "settle")),
    "schedule": (("book", "slot in"), ("time", "plan")),
    "order": (("request", "buy"), ("purchase", "requisition")),
    "interpret": (("make sense of", "read"), ("decode", "explain")),
    "implement": (("roll out", "put in place"), ("carry out", "execute")),
    "compute": (("calculate", "work out"), ("figure out", "tally")),
}
_WORD_SYN: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "customers": (("clients",), ("buyers",)), "customer": (("client",), ("buyer",)),
    "clients": (("customers",), ("patrons",)), "client": (("customer",), ("patron",)),
    "patients": (("people in my care",), ("the patients I see",)), "patient": (("person in my care",), ("case",)),
    "equipment": (("gear",), ("machinery",)), "materials": (("supplies",), ("stock",)),
    "information": (("info",), ("details",)), "data": (("numbers",), ("figures",)),
    "reports": (("write-ups",), ("summaries",)), "report": (("write-up",), ("summary",)),
    "records": (("logs",), ("files",)), "documents": (("paperwork",), ("papers",)),
    "procedures": (("processes",), ("steps",)), "policies": (("rules",), ("guidelines",)),
    "staff": (("team",), ("employees",)), "employees": (("staff members",), ("workers",)),
    "workers": (("crew",), ("employees",)), "personnel": (("staff",), ("people",)),
    "problems": (("issues",), ("trouble spots",)), "activities": (("work",), ("tasks",)),
    "products": (("goods",), ("items",)), "services": (("offerings",), ("service lines",)),
    "projects": (("initiatives",), ("jobs",)), "programs": (("schemes",), ("initiatives",)),
    "systems": (("setups",), ("platforms",)), "techniques": (("methods",), ("approaches",)),
    "methods": (("approaches",), ("techniques",)), "tools": (("implements",), ("kit",)),
    "machines": (("machinery",), ("units",)), "machine": (("unit",), ("device",)),
    "vehicles": (("trucks and cars",), ("fleet",)), "students": (("learners",), ("pupils",)),
    "specifications": (("specs",), ("requirements",)), "operations": (("processes",), ("work",)),
    "supplies": (("stock",), ("provisions",)), "budgets": (("spending plans",), ("budget numbers",)),
    "safety": (("safe working",), ("health and safety",)), "proper": (("correct",), ("right",)),
    "appropriate": (("suitable",), ("fitting",)), "various": (("different",), ("assorted",)),
    "new": (("fresh",), ("brand-new",)), "public": (("general public",), ("community",)),
    "facilities": (("sites",), ("buildings",)), "requirements": (("needs",), ("specs",)),
    "schedules": (("timetables",), ("rotas",)), "documentation": (("paperwork",), ("docs",)),
    "management": (("leadership",), ("the bosses",)), "individuals": (("people",), ("folks",)),
}

# --- templates ------------------------------------------------------------------------------------------
# {V} verb phrase in the form the template names, {O} object head, {P} the same sentence-initial gerund.
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "open": ("", "Hi! ", "Hey. ", "Quick question: ", "Hello, ", "Okay so ", "Morning! "),
        "close": ("", " Thanks!", " Any tips?", " Where do I start?", " Appreciate it.", " Keep it simple please."),
        "ger": ("I'm {V} {O} and could use a hand.", "Need help {V} {O}.", "I'm {V} {O} at work right now.",
                "{P} {O} today - how should I tackle it?", "Can you support me with {V} {O}?",
                "I keep getting stuck {V} {O}."),
        "base": ("Help me {V} {O}.", "Could you help me {V} {O}?", "Please help me {V} {O} for my job.",
                 "I'd like some help to {V} {O}."),
    },
    "heldout": {
        "open": ("", "Good evening. ", "So, ", "Hey there - ", "Question for you: ", "Right, ", "Hiya. "),
        "close": ("", " Cheers.", " Step by step would be great.", " What am I missing?", " Be concise.",
                  " Thanks in advance."),
        "third": ("In my role, I'm the one who {V} {O}. How can I do it better?",
                  "Our team has one person who {V} {O}, and this week that's me.",
                  "My job description says: someone who {V} {O}. What does a good day look like?"),
        "base": ("My boss asked me to {V} {O}. How would you approach it?",
                 "What's the smartest way to {V} {O}?", "Walk me through how to {V} {O}.",
                 "Tomorrow I have to {V} {O}. Any advice?", "What should I know before I {V} {O}?",
                 "Is there a checklist to {V} {O}?"),
    },
}
# Where an object head is cut: both splits cut at list/aside markers; heldout also drops purpose and means.
_CUTS_COMMON = (", ", "; ", " (", " such as ", " including ", " e.g.", ": ")
_CUTS = {"train": _CUTS_COMMON,
         "heldout": _CUTS_COMMON + (" to ", " using ", " in order ", " by ", " according to ", " based on ",
                                    " so that ", " that ", " which ", " with ")}
_MAX_WORDS = {"train": 14, "heldout": 9}
_DANGLING = frozenset("a an the and or of to for with in on at by as from into their its your such".split())
_SYN_P = 0.5  # chance that each dictionary word in an object variant is swapped
_N_VARIANTS = 3  # object variants per statement: variant 0 keeps the words, the rest swap some


def _parse(statement: str) -> tuple[str, str]:
    """(verb phrase in base form, lower case; object text) of one task statement."""
    tokens = statement.strip().rstrip(".").split()
    if not tokens:
        raise InputError("paraphrase: an empty task statement was given")
    # "Electronically transmit X": drop a leading adverb so the verb can be inflected.
    if len(tokens) > 1 and tokens[0].lower().endswith("ly") and len(tokens[0]) > 6 and tokens[0].lower() not in _LY_VERBS:
        tokens = tokens[1:]
    verb = tokens[0].rstrip(",").lower()
    i, skipped = 1, False
    if tokens[0].endswith(","):  # "Plan, direct, or coordinate X": skip the verb list up to its last verb
        for j in range(1, min(len(tokens) - 1, 8)):
            if tokens[j] in ("and", "or"):
                i, skipped = j + 2, True
                break
    elif len(tokens) > 2 and tokens[1] in ("and", "or"):  # "Clean or sterilize X"
        i, skipped = 3, True
    if i < len(tokens) and tokens[i].rstrip(",") in _PARTICLES:
        if not skipped:  # after "Install and set" the particle belongs to the skipped verb
            verb += " " + tokens[i].rstrip(",")
        i += 1
    return verb, " ".join(tokens[i:])


def _head(obj: str, split: str) -> str:
    """The object cut at the split's markers and word cap, without dangling function words."""
    cut = len(obj)
    for marker in _CUTS[split]:
        k = obj.find(marker)
        # A purpose/means cut (heldout only) must leave two words, so "set scanners to ..." keeps context.
        if 0 < k < cut and (marker in _CUTS_COMMON or len(obj[:k].split()) >= 2):
            cut = k
    words = obj[:cut].split()[:_MAX_WORDS[split]]
    while len(words) > 1 and words[-1].lower() in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(",;:")


_WORD_RE = re.compile(r"[A-Za-z][A-Za-z-]*")


def _swap(text: str, side: int, rng: np.random.Generator) -> str:
    """Replace each dictionary word with probability _SYN_P by one of the split's options."""
    def repl(m: re.Match) -> str:
        opts = _WORD_SYN.get(m.group(0).lower())
        if opts is None or rng.random() >= _SYN_P:
            return m.group(0)
        return opts[side][int(rng.integers(len(opts[side])))]
    return _WORD_RE.sub(repl, text)


def paraphrase(task_texts: Sequence[str], *, split: Split, seed: int | np.random.Generator) -> list[str]:
    """One user-request text per task statement [N] (never containing the statement itself).

    Deterministic for an int seed (a Generator is advanced). Statements are parsed once per unique text;
    the per-row work is a few integer draws and one string format (200k texts: about 1-2 s).
    """
    if split not in _TEMPLATES:
        raise InputError(f"paraphrase: split must be 'train' or 'heldout', got {split!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    codes, uniques = pd.factorize(pd.Series(list(task_texts), dtype=object))
    n = len(codes)
    if n == 0:
        return []
    side = 0 if split == "train" else 1
    tpl = _TEMPLATES[split]

    # Per unique statement: verb, object variants, the lower-case statement for the verbatim guard.
    verbs, objects, cores = [], [], []
    for s in uniques:
        if not isinstance(s, str):
            raise InputError(f"paraphrase: task statements must be strings, got {type(s).__name__}")
        verb, obj = _parse(s)
        head = _head(obj, split)
        verbs.append(verb)
        objects.append([head] + [_swap(head, side, rng) for _ in range(_N_VARIANTS - 1)])
        cores.append(s.strip().rstrip(".").lower())

    # Per row: which family (inflection), template, opening, closing, object variant, verb synonym.
    forms = [f for f in tpl if f not in ("open", "close")]
    form = rng.integers(len(forms), size=n)
    which = rng.integers(1 << 30, size=n)
    opening = rng.integers(len(tpl["open"]), size=n)
    closing = rng.integers(len(tpl["close"]), size=n)
    variant = rng.integers(_N_VARIANTS, size=n)
    use_syn = rng.random(n) < 0.5
    syn_pick = rng.integers(1 << 30, size=n)

    # Lists, not arrays: indexing numpy scalars row by row is several times slower.
    codes, form, which, opening, closing = codes.tolist(), form.tolist(), which.tolist(), opening.tolist(), closing.tolist()
    variant, use_syn, syn_pick = variant.tolist(), use_syn.tolist(), syn_pick.tolist()
    fallback = "ger" if split == "train" else "third"
    out = []
    for i in range(n):
        u = codes[i]
        verb = verbs[u]
        syn = _VERB_SYN.get(verb)
        if syn is not None and use_syn[i]:
            verb = syn[side][syn_pick[i] % len(syn[side])]
        text = _render(tpl, forms[form[i]], which[i], verb, objects[u][variant[i]], opening[i], closing[i])
        if cores[u] in text.lower():  # the statement survived intact: an inflected verb cannot contain it
            text = _render(tpl, fallback, which[i], verbs[u], objects[u][0], opening[i], closing[i])
        out.append(text)
    return out


def _render(tpl: dict, form: str, which: int, verb: str, obj: str, opening: int, closing: int) -> str:
    inflected = _inflect(verb, form)
    templates = tpl[form]
    body = templates[which % len(templates)].format(V=inflected, O=obj, P=inflected[:1].upper() + inflected[1:])
    if not obj:  # a statement that is only a verb leaves a gap before the punctuation
        body = " ".join(body.split()).replace(" .", ".").replace(" ?", "?").replace(" ,", ",")
    open_ = tpl["open"][opening]
    case = _CASE[open_]
    if case == "lower" and not (body[:2] in ("I ", "I'")):
        body = body[:1].lower() + body[1:]
    elif case == "upper":
        body = body[:1].upper() + body[1:]
    return open_ + body + tpl["close"][closing]


# How a body starts after each opening: after "So, " in lower case; after "Hey. " or nothing, capitalised.
_CASE = {o: ("upper" if not o or o.rstrip().endswith((".", "!")) else "keep" if o.rstrip().endswith(":")
             else "lower") for split in _TEMPLATES.values() for o in split["open"]}
