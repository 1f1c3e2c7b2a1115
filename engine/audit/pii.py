"""PII scan: person-identifying patterns (e-mail, phone, card, address, …: the scrubber's rules) in the text
that tables publish about clusters — names, descriptions, keywords, examples, facet values.

The engine scrubs every such text before it is written, with these rules at least (Presidio adds names), so a
run's own output holds nothing they would replace: a hit means the file was made or edited by something else,
or a rule was bypassed (an analyst's review planted "John Smith at 42 Main Street" in a published name; every
other attack passed it). The finding names the kind of PII and the row, never the matched text.
"""
from __future__ import annotations

from clio_engine.audit.files import RunView, Violation
from clio_engine.privacy.scrub import Scrubber

ATTACK = "pii"
TEXT_COLUMNS = ("name", "description", "keywords", "examples", "cluster_name")
FACET_VALUE = "value"  # in facets.parquet the facet's value ("en", a country); elsewhere a number, never read


def attack(view: RunView) -> list[Violation]:
    scrubber = Scrubber()
    tables = dict(view.tables)
    if view.clusters is not None and view.clusters_file not in tables:  # names from tree.json or the explorer
        tables[view.clusters_file or "clusters"] = view.clusters
    out: list[Violation] = []
    for file, rows in sorted(tables.items()):
        columns = (*TEXT_COLUMNS, FACET_VALUE) if file.endswith("facets.parquet") else TEXT_COLUMNS
        for i, row in enumerate(rows):
            for column in columns:
                for text in _texts(row.get(column)):
                    kinds = sorted({kind for kind, _ in scrubber.find(text)})
                    if kinds:
                        where = f"row {i} ({row['id']})" if row.get("id") is not None else f"row {i}"
                        out.append(Violation(ATTACK, file, f"{where} {column}",
                                             f"holds what the scrubber replaces: {', '.join(kinds)}"))
    return out


def _texts(value) -> list[str]:
    """The strings of a cell: itself, or those of a list (keywords, examples)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []
