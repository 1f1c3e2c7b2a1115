"""PII scrubbing for every text that leaves the engine (SPEC §4): examples, names, descriptions, keywords.

`Scrubber` applies an ordered list of `Rule`s (name, compiled pattern, optional validator) and replaces
each match with `[NAME]`. Rules are pluggable: pass your own list, or `DEFAULT_RULES + [...]`.
Order matters: URLs and emails go first so that their digits and dots are not half-taken by the
phone, IP or number rules. Validators (Luhn, IBAN mod 97, SSN structure, digit counts) keep numbers
that only look like identifiers. These rules are the dependency-free backend; `make_scrubber` picks
Presidio + spaCy names (`presidio_backend`, the `pii` extra) where installed (`privacy.scrubber`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable


# The tags our LLM prompts put around data (facets: conversation; naming: group_texts, contrast_texts,
# subgroup_names; auditor: summary). Record text that holds one could close the data block and write
# outside it as if it were the prompt (review: prompt injection).
PROMPT_TAGS = ("conversation", "group_texts", "contrast_texts", "subgroup_names", "summary")
_PROMPT_TAG = re.compile(r"<(\s*/?\s*(?:" + "|".join(PROMPT_TAGS) + r")\b[^<>]*)>", re.IGNORECASE)


def prompt_safe(text: str) -> str:
    """`text` with every opening or closing prompt tag ("</group_texts>", "< /Summary >") turned into a
    look-alike the prompt never uses ("‹/group_texts›"): inside a prompt it can no longer end the block.
    Everything else is left as it is."""
    return _PROMPT_TAG.sub(lambda m: f"‹{m.group(1)}›", text)


def luhn_valid(digits: str) -> bool:
    """Card numbers carry a Luhn check digit; 16 random digits pass it only 1 time in 10."""
    nums = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(nums) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(nums)):
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    """ISO 13616 check: 15-34 characters, the first four moved to the end, letters as 10..35, mod 97 == 1.
    A random string passes 1 time in 97, so spaced digit groups that only look like an IBAN stay."""
    s = re.sub(r"[\s-]", "", text).upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


def ssn_valid(text: str) -> bool:
    """US SSN structure: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    d = re.sub(r"\D", "", text)[-9:]
    return len(d) == 9 and d[:3] not in ("000", "666") and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000"


def _digits_between(lo: int, hi: int) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        return lo <= sum(c.isdigit() for c in text) <= hi
    return check


def _valid_ipv4(text: str) -> bool:
    return all(0 <= int(part) <= 255 for part in text.split("."))


@dataclass(frozen=True)
class Rule:
    """`group` > 0 replaces only that group of the match (a cue such as "my name is" or "ssn" stays)."""

    name: str
    pattern: re.Pattern
    validate: Callable[[str], bool] | None = None
    group: int = 0


_STREET = r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|parkway|pkwy|crescent|gardens|square|sq|mews)"
_CAP = r"[A-ZÀ-ÖØ-Þ][\w'’-]*"  # a capitalised word (names of streets and cities), Latin-1 capitals included
# German/Dutch/Nordic compounds ("Hauptstraße", "Musterstr.", "Lindenweg", "Damstraat"); "ring", "gade" and
# the like are left out: "Bring 5", "Brigade 3" are words, not streets.
_EU_SUFFIX = r"(?:stra(?:ß|ss)e|str\.|weg|platz|allee|gasse|damm|ufer|chaussee|straat|gracht|laan|plein|gatan|vägen)"
_POSTCODE_CITY = rf"(?:,?\s*(?:[A-Z]{{1,2}}-)?\d{{4,5}}\s+{_CAP}(?:\s+(?:(?:am|an der|im|upon|sur|en|de)\s+)?{_CAP})?)?"
_UK_POSTCODE = r"(?:,?\s*(?:[A-Z][a-z]+,?\s+)?[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b)?"
_NAME = r"[A-ZÀ-ÖØ-Þ][\w'’-]*[a-zß-öø-ÿ]"  # a capitalised name word, not all capitals ("O'Brien", "Müller-Lüdenscheidt")
_PARTICLES = r"(?:(?:de|del|della|delle|dei|di|da|do|dos|das|la|le|les|des|du|el|los|las|l'|d')\s*)*"

# Pieces of the spelled-out address rule (EMAIL, below). A local part: letters first, no function word.
_NOT_A_NAME = r"(?!(?:the|a|an|this|that|it|me|you|us|them|look|here|there|home|work|least|most|all)\b)"
_LOCAL = _NOT_A_NAME + r"[^\W\d_][\w%+-]*"
_SEP = r"(?:[._]|\s+dot\s+)"
_LOCAL_PARTS = _NOT_A_NAME + r"[^\W\d_][\w%+-]+(?:" + _SEP + r"[^\W\d_][\w%+-]*)+"  # "maria.garcia", "jo_smith"
_LABEL = _NOT_A_NAME + r"[^\W_][\w-]*"
_DOMAIN = _LABEL + r"(?:\s*(?:\.|\bdot\b)\s*" + _LABEL + r")*\s*(?:\.|\bdot\b)\s*[^\W\d_]{2,}\b"
_DOMAIN_ANY = _LABEL + r"(?:\s*(?:\.|[(\[{]dot[)\]}]|\bdot\b)\s*" + _LABEL + r")*\s*(?:\.|[(\[{]dot[)\]}]|\bdot\b)\s*[^\W\d_]{2,}\b"
_PROVIDER = (r"(?:gmail|googlemail|yahoo|ymail|outlook|hotmail|msn|icloud|me\.com|aol|proton(?:mail)?|pm\.me|"
             r"gmx|web\.de|yandex|mail\.ru|qq|163|126|zoho|fastmail|tutanota)")

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("URL", re.compile(r"\b(?:https?://|www\.(?=\w))[^\s<>\"']+", re.I)),
    # Unicode local parts and domains ("jürgen.müller@beispiel.de", "用户@例子.广告"); the top-level label
    # must hold letters, so "lodash@4.17.21" is a package pin, not an address.
    Rule("EMAIL", re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}\b")),
    # Addresses written out so that no "@" shows (a review found "garcia at outlook" published as a keyword): any
    # name " at " a mail provider ("lpiotrowska at outlook.com", "kbrennan88 at yahoo"); a name of two parts or
    # more ("maria.garcia", "maria dot garcia") " at " a dotted domain; any name " at " a domain spoken with " dot "
    # ("brandon at example dot com"); "(at)" and "[at]" forms. Not "look at example.com", "version 3.11 at python.org" or "at the dot com bubble": a plain
    # name before " at " is no address, nor is a number, an abbreviation ("e.g.") or a function word.
    Rule("EMAIL", re.compile(
        r"(?<![\w.%+-])(?:"
        rf"{_LOCAL}\s+at\s+{_PROVIDER}(?:\s*(?:\.|\bdot\b)\s*[^\W\d_]{{2,}})*\b"
        rf"|{_LOCAL_PARTS}\s+at\s+{_DOMAIN}"
        rf"|{_LOCAL}\s+at\s+{_LABEL}(?:\s+dot\s+{_LABEL})*\s+dot\s+[^\W\d_]{{2,}}\b"
        rf"|{_LOCAL}\s*[(\[{{]at[)\]}}]\s*{_DOMAIN_ANY}"
        r")", re.I)),
    Rule("IP", re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)"), _valid_ipv4),  # not inside an SNMP OID
    Rule("IP", re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b")),
    # IBANs, any case, spaced or not, mod-97 checked: letters may appear in the bank code (GB82 WEST ...,
    # NL91 ABNA ...), the rest is digit groups; the all-capitals form also takes letters anywhere.
    Rule("IBAN", re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4})(?: ?\d{4}){1,7}(?: ?\d{1,3})?\b"), iban_valid),
    Rule("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), iban_valid),
    # Card numbers start with 2-6 (Mastercard 2-series, Amex 3, Visa 4, Mastercard 5, Discover 6): a Luhn-passing
    # millisecond timestamp (17...) is not one.
    Rule("CARD", re.compile(r"\b[2-6](?:[ -]?\d){11,17}[ -]?\d\b"), luhn_valid),
    Rule("SSN", re.compile(r"\b(?:ssn|social security(?: number| no\.?| #)?)\s*(?:is|:|#)?\s*(\d{3}[ -]?\d{2}[ -]?\d{4})\b", re.I),
         ssn_valid, group=1),
    Rule("SSN", re.compile(r"\b\d{3}(?:-\d{2}-| \d{2} )\d{4}\b"), ssn_valid),
    # International numbers with "+": country code then 7-14 more digits in any grouping ("+14155550132",
    # "+49 30 12345678", "+44 (0)20 7946 0958").
    Rule("PHONE", re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?!\w)"), _digits_between(8, 15)),
    # (area) 7946 0958, or three digit groups: two bare groups ("2024-2025") are too often not phones.
    Rule("PHONE", re.compile(r"(?<![\w.])(?:\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
                             r"|\d{2,4}[ .-]\d{3,4}[ .-]\d{3,4})\b")),
    # Bare North American numbers ("4155550132", "14155550132"): area and exchange codes start with 2-9,
    # so Unix timestamps (1...) and round counts (2500000000) stay.
    Rule("PHONE", re.compile(r"(?<![\w.,])1?[2-9]\d{2}[2-9]\d{6}(?![\w.,]\d|\w)")),
    # European trunk-prefixed national numbers: "030 12345678", "07700 900123", "07700900123".
    Rule("PHONE", re.compile(r"(?<![\w.,])0[1-9]\d{1,3}[ /-]\d{5,8}(?![\w.,]\d|\w)")),
    Rule("PHONE", re.compile(r"(?<![\w.,])0[127]\d{9}(?![\w.,]\d|\w)")),
    # The identifier must hold ≥ 4 digits: "account details", "routing problem" are words, not numbers.
    Rule("ACCOUNT", re.compile(r"\b(?:account|acct|routing|iban|sort code)(?: (?:number|no\.?|#))?[:#]?\s*(?=(?:[A-Z-]*\d){4})[A-Z0-9-]{6,}\b", re.I)),
    # US/UK: house number (221B), capitalised street words, street type; a UK postcode may follow.
    Rule("ADDRESS", re.compile(rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:{_CAP}\.?\s+){{1,4}}(?i:{_STREET})(?:\.|\b){_UK_POSTCODE}")),
    # German/Dutch/Nordic: "Hauptstraße 5, 10115 Berlin", "Berliner Str. 12a", "Am Lindenweg 7".
    Rule("ADDRESS", re.compile(rf"\b(?:{_CAP}\s+)?[A-ZÀ-ÖØ-Þ][\w'-]*(?i:{_EU_SUFFIX})\s*\d{{1,4}}(?:\s?[a-zA-Z]\b)?{_POSTCODE_CITY}")),
    Rule("ADDRESS", re.compile(rf"\b{_CAP}\s+(?:Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse)\s*\d{{1,4}}(?:\s?[a-zA-Z]\b)?{_POSTCODE_CITY}")),
    # French/Spanish/Portuguese/Italian, type first: "rue de Rivoli 12", "Calle de Alcalá, 42", "12 rue de la Paix".
    Rule("ADDRESS", re.compile(rf"\b(?:\d{{1,4}}(?:\s?(?:bis|ter))?,?\s+)?(?i:rue|avenue|boulevard|bd|allée|impasse|quai|chemin|calle|avenida|paseo|plaza|carrer|rua|praça|viale|piazza|corso)"
                               rf"\s+{_PARTICLES}{_CAP}(?:\s+{_PARTICLES}{_CAP}){{0,3}}(?:,?\s*\d{{1,4}}[a-z]?\b)?{_POSTCODE_CITY}"),
         lambda m: any(c.isdigit() for c in m)),
    # "via" is an English word ("via Python 3"): only with a postcode after it ("via Roma 10, 00184 Roma").
    Rule("ADDRESS", re.compile(rf"\b(?i:via)\s+{_PARTICLES}{_CAP}(?:\s+{_CAP}){{0,3}},?\s*\d{{1,4}}[a-z]?,?\s*\d{{5}}\s+{_CAP}")),
    # Cues for a person's name that rules can see; the NER backend (presidio_backend) finds the rest.
    Rule("PERSON", re.compile(r"\b(?i:my name is|my name's|i am called|call me|name:|signed,?|regards,?|sincerely,?)\s+"
                              rf"((?!(?:The|This|That|Our|Your|My|Project|Team|Customer|User)\b){_NAME}(?:\s+{_NAME}){{0,2}})"), group=1),
    Rule("PERSON", re.compile(rf"\b(?i:i'm|i am)\s+({_NAME}(?:\s+{_NAME}){{1,2}})\b"), group=1),  # two words at least
)


@dataclass
class Scrubber:
    """Replace PII with `[NAME]` placeholders. `scrub(text)` → text; `find(text)` → [(name, match)]."""

    rules: tuple[Rule, ...] = field(default_factory=lambda: DEFAULT_RULES)

    def scrub(self, text: str) -> str:
        return self._apply(text, None)

    def scrub_all(self, texts: Iterable[str]) -> list[str]:
        return [self.scrub(t) for t in texts]

    def blank(self, text: str) -> str:
        """`text` with what the rules would replace cut out as a sentence break (" . "), no placeholder word: for
        the namers' phrase counts, which must neither span a removed span ("email is john", "smith" from
        john.smith@example.com) nor count a placeholder ("email") as a word the people wrote. Rules only: the
        NER backend is too slow to read every record (it judges the finished phrases instead)."""
        if self.rules is DEFAULT_RULES and not _MAY_HOLD_PII.search(text):
            return text  # no default rule can match (4× faster on the demo's texts: 1 in 16 passes this)
        for rule in self.rules:
            text = rule.pattern.sub(lambda m, r=rule: self._replace(m, r, None, BREAK), text)
        return text

    def find(self, text: str) -> list[tuple[str, str]]:
        """What `scrub` replaces, in rule order: a span one rule took is not reported again by a later one."""
        found: list[tuple[str, str]] = []
        self._apply(text, found)
        return found

    def find_all(self, texts: Iterable[str]) -> list[list[tuple[str, str]]]:
        """`find` of each text (a backend may batch them)."""
        return [self.find(t) for t in texts]

    def person_spans_all(self, texts: Iterable[str]) -> list[list[str]]:
        """Per text, the PERSON spans `find` reports (for judging words of short phrases in their context,
        `naming.written_case`)."""
        return [[span for name, span in found if name == "PERSON"] for found in self.find_all(texts)]

    def _apply(self, text: str, found: list | None) -> str:
        for rule in self.rules:
            text = rule.pattern.sub(lambda m, r=rule: self._replace(m, r, found), text)
        return text

    @staticmethod
    def _replace(match: re.Match, rule: Rule, found: list | None = None, mark: str | None = None) -> str:
        if rule.validate is not None and not rule.validate(match.group(0)):
            return match.group(0)
        g = rule.group
        if found is not None:
            found.append((rule.name, match.group(g)))
        whole = match.group(0)
        mark = f"[{rule.name}]" if mark is None else mark
        if g == 0:
            return mark
        a, b = match.start(g) - match.start(), match.end(g) - match.start()
        return f"{whole[:a]}{mark}{whole[b:]}"


# What every default rule's match holds one of: a digit (numbers, addresses), "@" (emails), ":" (IPv6, "name:"),
# "www.", a name cue, or " at " before a dotted word or a mail provider, or "(at)" (addresses written out); a text
# with none of them is left alone by `Scrubber.blank` without trying the rules.
_MAY_HOLD_PII = re.compile(r"[\d@:]|www\.|(?i:name|call me|signed|regards|sincerely|i'm|i am|\bat\s+\S+\s*(?:\.|dot\b)|"
                           r"\bat\s+" + _PROVIDER + r"|[(\[{]at[)\]}])")
SCRUBBERS = ("auto", "presidio", "rules")
BREAK = " . "  # `Scrubber.blank`'s mark: a sentence break, which no phrase or term spans


def make_scrubber(kind: str = "auto") -> Scrubber:
    """The scrubber `privacy.scrubber` names: `presidio` (Presidio + spaCy names, then our rules), `rules`
    (ours only, no dependencies), `auto` (presidio where `presidio-analyzer` is installed, else rules)."""
    from clio_engine.errors import ConfigError
    from clio_engine.privacy import presidio_backend

    if kind not in SCRUBBERS:
        raise ConfigError(f"privacy.scrubber must be one of {', '.join(SCRUBBERS)}, not {kind!r}")
    if kind == "rules" or (kind == "auto" and not presidio_backend.presidio_available()):
        return Scrubber()
    if not presidio_backend.presidio_available():
        raise ConfigError("privacy.scrubber: presidio needs presidio-analyzer; pip install 'clio-engine[pii]' or use rules")
    return presidio_backend.PresidioScrubber()

