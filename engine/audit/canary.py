"""Canary scan: planted tokens in any file outside private/ (Parquet decoded, everything else as text)."""
from __future__ import annotations

import json
import zlib

from clio_engine.audit.files import RunView, Violation, read_table

ATTACK = "canary"


def attack(view: RunView, tokens: list[str]) -> list[Violation]:
    tokens = [t for t in (t.strip() for t in tokens) if t]
    out = []
    for path in view.files():
        text = _text(view, path)
        for t in tokens:
            if t in text:
                out.append(Violation(ATTACK, view.rel(path), f"token {t!r}", "a planted canary appears in a published file"))
    return out


def _text(view: RunView, path) -> str:
    rel = view.rel(path)
    if rel in view.tables:
        return json.dumps(view.tables[rel], default=str, ensure_ascii=False)
    if path.suffix == ".parquet":
        return json.dumps(read_table(path), default=str, ensure_ascii=False)
    data = path.read_bytes()
    parts = [data.decode("utf-8", errors="ignore")]
    if path.suffix.lower() == ".png":
        parts += _png_text(data)
    return "\n".join(parts)


def _png_text(data: bytes) -> list[str]:
    """tEXt/zTXt/iTXt chunks of a PNG, decompressed where compressed."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        try:
            if kind == b"zTXt":
                key, _, rest = body.partition(b"\0")
                out.append(key.decode("latin-1") + " " + zlib.decompress(rest[1:]).decode("latin-1"))
            elif kind == b"iTXt":
                key, _, rest = body.partition(b"\0")
                flag, rest = rest[0], rest[2:]
                _, _, rest = rest.partition(b"\0")
                _, _, text = rest.partition(b"\0")
                out.append(key.decode("latin-1") + " " + (zlib.decompress(text) if flag else text).decode("utf-8", "ignore"))
        except (zlib.error, IndexError):
            continue
    return out
