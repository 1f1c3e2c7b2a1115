"""PII scrubber quality (issue 10, item 6): false scrubs on ordinary texts, recall on planted PII, throughput.

`python -m benchmarks.scrub_quality [--backends rules,presidio] [--per-source 2500] [--per-kind 60]
 [--output benchmarks/results/scrub_quality_DATE.json]`

- Precision side: texts from ../shared/data (banking77, hwu64, stackoverflow_titles, arena-hard v0.1 and
  v2.0 prompts; a fixed-seed subset of each). These hold few real identifiers, so every text the scrubber
  changes is counted ("scrubbed per 10k texts", by tag) and every changed text is written to the JSON so
  that a sample can be read and classified by hand (RESULTS.md says how many were real PII).
- Recall side: a planted set generated from templates with a fixed seed, `--per-kind` texts per kind
  (US/intl/UK phones, ASCII and non-ASCII e-mail, IBANs in several spellings, SSNs, cards, US/UK and
  European street addresses, people's names with and without a cue). A text counts as caught when the
  planted value is gone (`recall_value`) and, strictly, when no piece of it (a run of ≥ 3 letters or digits
  not already in the template) is left (`recall_strict`): "+49 30 [PHONE]" is caught but not strictly.
- Throughput: texts per second over the precision corpus, one process, after the backend is loaded
  (the Presidio load time is reported apart): one `scrub` call per text, and the whole corpus in one
  `scrub_all` (batched NER), whose output is checked to equal the per-text one.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import random
import re
import shlex
import sys
import time
from collections import Counter
from pathlib import Path

from benchmarks.data import data_dir, read_column, shuffled_subset, usable_unique

SOURCES = [  # (file, column, texts to take)
    ("banking77.csv.gz", "text", None),
    ("hwu64.csv.gz", "text", None),
    ("stackoverflow_titles.csv.gz", "text", None),
    ("arena_hard_v0_1_prompts.csv.gz", "text", 500),
    ("arena_hard_v2_0_prompts.csv.gz", "text", 500),
]

FIRST = ["James", "Maria", "Wei", "Priya", "Jürgen", "Fatima", "Olivia", "Mohammed", "Sofia", "Hiroshi", "Amara",
         "Lukas", "Chloé", "Diego", "Aisha", "Noah", "Elena", "Ravi", "Ingrid", "Kwame", "Emily", "Carlos", "Anna",
         "Tomasz", "Grace", "Liam", "Yuki", "Omar", "Isabella", "Sven"]
LAST = ["Smith", "Gonzalez", "Chen", "Patel", "Müller", "Okafor", "Johnson", "Haddad", "Rossi", "Tanaka", "Mensah",
        "Schneider", "Dubois", "Fernández", "Khan", "Williams", "Petrova", "Sharma", "Larsen", "Boateng", "Brown",
        "Silva", "Kowalski", "O'Brien", "Nguyen", "Murphy", "Yamamoto", "Farouk", "Moreau", "Lindqvist"]
STREET_NAMES = ["Baker", "Oak", "Maple", "Pennsylvania", "Elm", "Victoria", "Church", "High", "Park", "Station",
                "Mill", "King", "Queen", "Cedar", "Abbey"]
US_TYPES = ["Street", "Road", "Avenue", "Lane", "Drive", "Court", "Boulevard", "Way", "Place", "St.", "Ave"]
DE_STEMS = ["Haupt", "Bahnhof", "Linden", "Garten", "Schiller", "Goethe", "Berliner ", "Kirch", "Markt", "Rosen",
            "Mozart", "Friedrich-Ebert-", "Wald", "Schul", "Birken"]
DE_TYPES = ["straße", "strasse", "str.", "weg", "platz", "allee", "gasse"]
DE_CITIES = ["Berlin", "München", "Hamburg", "Köln", "Frankfurt am Main", "Leipzig", "Zürich", "Wien", "Dresden"]
ROMANCE = [("rue", ["de la Paix", "Victor Hugo", "de Rivoli", "du Faubourg Saint-Honoré", "des Lilas"], ["Paris", "Lyon", "Marseille"]),
           ("calle", ["de Alcalá", "Mayor", "de Serrano", "Gran Vía", "del Prado"], ["Madrid", "Sevilla", "Valencia"]),
           ("via", ["Roma", "Garibaldi", "Giuseppe Verdi", "Dante", "Nazionale"], ["Roma", "Milano", "Torino"])]

TEMPLATES = {
    "phone_us": ["call me back on {}", "my cell is {} if anything changes", "Customer wrote: reach me at {} after 5pm",
                 "Please text {} with the tracking number", "the number on file ({}) is wrong"],
    "phone_intl": ["our Berlin office is {}", "ring me on {} when you land", "WhatsApp: {}",
                   "the hotel's number is {} and they speak English", "contact the UK team on {}"],
    "email": ["email me at {} please", "my address {} bounces", "send the invoice to {}",
              "Contact: {} for details", "I can't log in with {} anymore"],
    "iban": ["please transfer to {} by Friday", "my IBAN is {}", "refund it to account {}",
             "the payment to {} failed", "Bank details: {}"],
    "ssn": ["my SSN is {}", "ssn {} on the form was rejected", "social security number {} needs updating",
            "Fill in {} as the SSN", "the W-2 shows {} as my social security number"],
    "card": ["my card {} was declined", "charge {} for the order", "card number: {} exp 12/27",
             "Why was {} blocked?", "I lost the card ending ... no wait the full number is {}"],
    "address_us_uk": ["ship it to {}", "I live at {}", "deliver to {} tomorrow",
                      "The party is at {} on Saturday", "change my billing address to {}"],
    "address_eu": ["bitte an {} liefern", "ship it to {}", "my new address is {}",
                   "the flat at {} is available", "Rechnung an {} schicken"],
    "person_cue": ["My name is {} and I need help with my order", "Hi, I'm {}. Can you check my account?",
                   "Regards, {}", "Please call me {}.", "name: {}"],
    "person_nocue": ["{} asked me to summarise the meeting", "Write a reference letter for {} who worked here",
                     "Draft an email to {} about the delayed shipment", "yesterday {} from accounting sent the file",
                     "Can you translate this note from {} into Spanish?"],
}


def _luhn_complete(prefix: str, n: int, rng: random.Random) -> str:
    digits = prefix + "".join(rng.choice("0123456789") for _ in range(n - len(prefix) - 1))
    for check in "0123456789":
        total = 0
        for i, c in enumerate(reversed(digits + check)):
            d = int(c)
            if i % 2 == 1:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return digits + check
    raise AssertionError


def _iban(country: str, bban: str) -> str:
    num = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    return f"{country}{98 - num % 97:02d}{bban}"


def _group4(s: str) -> str:
    return " ".join(s[i:i + 4] for i in range(0, len(s), 4))


def _value(kind: str, rng: random.Random) -> str:
    d = lambda n: "".join(rng.choice("0123456789") for _ in range(n))  # noqa: E731
    if kind == "phone_us":
        area, ex, line = f"{rng.randint(2, 9)}{d(2)}", f"{rng.randint(2, 9)}{d(2)}", d(4)
        return rng.choice([f"{area}{ex}{line}", f"+1{area}{ex}{line}", f"({area}) {ex}-{line}", f"{area}-{ex}-{line}",
                           f"+1 {area} {ex} {line}", f"{area}.{ex}.{line}"])
    if kind == "phone_intl":
        return rng.choice([f"+49 30 {d(8)}", f"+49 {rng.randint(151, 179)} {d(7)}", f"+44 20 {rng.randint(7000, 8999)} {d(4)}",
                           f"+44 7{d(3)} {d(6)}", f"07{d(3)} {d(6)}", f"07{d(9)}", f"020 {rng.randint(7000, 8999)} {d(4)}",
                           f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}", f"030 {d(8)}", f"+91 98{d(3)} {d(5)}"])
    if kind == "email":
        f, l = rng.choice(FIRST).lower(), rng.choice(LAST).lower().replace("'", "")
        return rng.choice([f"{f}.{l}@example.com", f"{f}{d(2)}@mail.co.uk", f"{f[0]}{l}@firma.de", f"{f}.{l}+work@corp.io",
                           f"{f}@beispiel.de", "用户{}@例子.广告".format(d(2)), f"{f}.{l}@müller-bau.de", f"{l}@université.fr"])
    if kind == "iban":
        iban = rng.choice([_iban("DE", d(18)), _iban("GB", "WEST" + d(14)), _iban("FR", d(23)), _iban("NL", "ABNA" + d(10)),
                           _iban("ES", d(20))])
        return rng.choice([iban, _group4(iban), _group4(iban).lower(), iban.lower()])
    if kind == "ssn":
        area, grp, ser = f"{rng.randint(1, 665):03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"
        return rng.choice([f"{area}-{grp}-{ser}", f"{area} {grp} {ser}", f"{area}{grp}{ser}"])
    if kind == "card":
        num = _luhn_complete(rng.choice(["4", "51", "52", "55"]), 16, rng)
        return rng.choice([num, _group4(num), "-".join(num[i:i + 4] for i in range(0, 16, 4))])
    if kind == "address_us_uk":
        n = rng.choice([str(rng.randint(1, 9999)), f"{rng.randint(1, 300)}{rng.choice('AB')}"])
        street = f"{n} {rng.choice(STREET_NAMES)} {rng.choice(US_TYPES)}"
        return rng.choice([street, f"{street}, London NW{rng.randint(1, 9)} {rng.randint(1, 9)}XE", f"{street}, Springfield"])
    if kind == "address_eu":
        style = rng.randint(0, 3)
        if style <= 1:
            stem, typ = rng.choice(DE_STEMS), rng.choice(DE_TYPES)
            if stem.endswith(" "):
                typ = typ.capitalize()
            s = f"{stem}{typ} {rng.randint(1, 120)}{rng.choice(['', '', 'a', 'b'])}"
            return s if style == 0 else f"{s}, {rng.randint(10000, 99999)} {rng.choice(DE_CITIES)}"
        kw, names, cities = rng.choice(ROMANCE)
        name, num, city = rng.choice(names), rng.randint(1, 150), rng.choice(cities)
        if kw == "rue":
            return rng.choice([f"{num} rue {name}, {rng.randint(10000, 95999)} {city}", f"{num}, rue {name}"])
        if kw == "calle":
            return rng.choice([f"Calle {name}, {num}", f"calle {name} {num}, {rng.randint(10000, 52999)} {city}"])
        return f"via {name} {num}, {rng.randint(10000, 98999)} {city}"
    if kind in ("person_cue", "person_nocue"):
        return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    raise KeyError(kind)


def planted_set(per_kind: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for kind, templates in TEMPLATES.items():
        for i in range(per_kind):
            template, value = templates[i % len(templates)], _value(kind, rng)
            out.append({"kind": kind, "template": template, "value": value, "text": template.format(value)})
    return out


def _pieces(value: str, template: str) -> list[str]:
    """Runs of ≥ 3 letters or digits of the value that the template does not hold itself."""
    stop = {"rue", "via", "calle", "street", "road", "avenue", "lane", "drive", "court", "way", "place", "boulevard",
            "london", "springfield", "the", "de", "la", "del", "des", "ave"}
    return [p for p in re.findall(r"\w{3,}", value) if p.lower() not in stop and p.lower() not in template.lower()]


def make_backend(name: str):
    from clio_engine.privacy import make_scrubber

    t0 = time.perf_counter()
    scrubber = make_scrubber(name)
    scrubber.scrub("warm-up: load Jane Doe's model, +1 415 555 2671")  # Presidio/spaCy load lazily on first use
    return scrubber, time.perf_counter() - t0


def precision_corpus(folder: Path, per_source: int) -> list[tuple[str, str]]:
    texts = []
    for file, column, n in SOURCES:
        unique, _ = usable_unique(read_column(folder, file, column))
        for t in shuffled_subset(unique, min(n or per_source, per_source, len(unique))):
            texts.append((file.split(".")[0], t))
    return texts


def run_backend(name: str, corpus: list[tuple[str, str]], planted: list[dict]) -> dict:
    scrubber, load_s = make_backend(name)
    outs, secs = [], Counter()
    for src, t in corpus:
        t0 = time.perf_counter()
        outs.append(scrubber.scrub(t))
        secs[src] += time.perf_counter() - t0
    elapsed = sum(secs.values())
    # The namers scrub their candidate phrases, names and examples with scrub_all: one batch (Presidio runs
    # spaCy over it with nlp.pipe). Same texts, timed side by side; its output must equal scrub's.
    t0 = time.perf_counter()
    batch_outs = scrubber.scrub_all([t for _, t in corpus])
    batch_s = time.perf_counter() - t0
    changed = [(src, t, o) for (src, t), o in zip(corpus, outs) if o != t]
    tags = Counter(tag for _, t, o in changed  # placeholders the scrubber put in, not "[DEBUG]" already in a text
                   for tag in set(re.findall(r"\[([A-Z]+)\]", o)) - set(re.findall(r"\[([A-Z]+)\]", t)))
    by_source = Counter(src for src, _, _ in changed)
    n_by_source = Counter(src for src, _ in corpus)

    recall: dict[str, dict] = {}
    misses = []
    for kind in TEMPLATES:
        rows = [p for p in planted if p["kind"] == kind]
        value_ok = strict_ok = 0
        for p in rows:
            out = scrubber.scrub(p["text"])
            gone = p["value"] not in out
            strict = gone and not any(piece in out for piece in _pieces(p["value"], p["template"]))
            value_ok += gone
            strict_ok += strict
            if not strict:
                misses.append({"kind": kind, "text": p["text"], "out": out})
        recall[kind] = {"n": len(rows), "recall_value": value_ok / len(rows), "recall_strict": strict_ok / len(rows)}
    n_planted = len(planted)
    return {
        "backend": name, "class": type(scrubber).__name__, "load_s": round(load_s, 2),
        "n_texts": len(corpus), "texts_per_s": round(len(corpus) / elapsed, 1), "scrub_s": round(elapsed, 2),
        "scrub_all_texts_per_s": round(len(corpus) / batch_s, 1), "scrub_all_s": round(batch_s, 2),
        "scrub_all_identical": batch_outs == outs,
        "scrubbed_texts": len(changed), "scrubbed_per_10k": round(1e4 * len(changed) / len(corpus), 1),
        "scrubbed_by_source": {s: {"n": n_by_source[s], "scrubbed": by_source[s],
                                   "texts_per_s": round(n_by_source[s] / secs[s], 1)} for s in n_by_source},
        "scrubbed_by_tag": dict(tags.most_common()),
        "recall": recall,
        "recall_value_all": sum(r["recall_value"] * r["n"] for r in recall.values()) / n_planted,
        "recall_strict_all": sum(r["recall_strict"] * r["n"] for r in recall.values()) / n_planted,
        "scrubbed_examples": [{"source": s, "text": t[:400], "out": o[:400]} for s, t, o in changed],
        "recall_misses": misses,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="rules,presidio")
    ap.add_argument("--per-source", type=int, default=2500)
    ap.add_argument("--per-kind", type=int, default=60)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--output", default=f"benchmarks/results/scrub_quality_{_dt.date.today().isoformat()}.json")
    args = ap.parse_args(argv)

    from clio_engine.device import cpu_model
    from clio_engine.privacy import presidio_backend

    corpus = precision_corpus(data_dir(args.data_dir), args.per_source)
    planted = planted_set(args.per_kind)
    results = {"command": ("python -m benchmarks.scrub_quality " + shlex.join(argv if argv is not None else sys.argv[1:])).strip(),
               "machine": cpu_model(), "python": platform.python_version(), "date": _dt.date.today().isoformat(),
               "per_kind": args.per_kind, "n_planted": len(planted), "backends": {}}
    for name in args.backends.split(","):
        if name == "presidio" and not presidio_backend.presidio_available():
            print("presidio: skipped (presidio-analyzer not installed)")
            continue
        r = run_backend(name, corpus, planted)
        results["backends"][name] = r
        print(f"{name:9s} scrubbed {r['scrubbed_texts']}/{r['n_texts']} texts ({r['scrubbed_per_10k']}/10k) "
              f"{r['scrubbed_by_tag']}  recall value {r['recall_value_all']:.3f} strict {r['recall_strict_all']:.3f}  "
              f"{r['texts_per_s']} texts/s one by one, {r['scrub_all_texts_per_s']} in one scrub_all "
              f"(identical: {r['scrub_all_identical']}) (load {r['load_s']} s)")
        for kind, rec in r["recall"].items():
            print(f"    {kind:14s} value {rec['recall_value']:.2f} strict {rec['recall_strict']:.2f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
