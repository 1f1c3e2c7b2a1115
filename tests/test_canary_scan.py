"""The audit's canary scan looks where text can be: strings of tables and JSON, text files, a PNG's text chunks.

A numeric canary (a card-number fragment, a phone suffix) turned up in compressed PNG bytes and in the digits of
float centroids, so every clean release failed with it (review 53, finding 1)."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from clio_engine.audit import audit
from clio_engine.cli import EXIT_OK, EXIT_VIOLATIONS, main

MANIFEST = {"zone": "release", "privacy": {"min_users": 1, "min_records": 1}}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(*chunks: bytes, pixels: bytes = b"\0\0") -> bytes:
    """A 1×1 PNG whose image data is `pixels` as stored (not necessarily a valid zlib stream: nothing inflates it)."""
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(chunks) + _chunk(b"IDAT", pixels)
            + _chunk(b"IEND", b""))


def _release(root: Path, files: dict[str, bytes | str]) -> Path:
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps(MANIFEST))
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def _found(root: Path, tokens: list[str]) -> set[tuple[str, str]]:
    return {(v.file, v.where.removeprefix("token ").strip("'")) for v in audit(root, canaries=tokens)
            if v.attack == "canary"}


def test_compressed_png_bytes_are_not_text(tmp_path):
    root = _release(tmp_path / "r", {"plots/facet_shares.png": _png(pixels=b"x\x9c]\xba4111\x9c?0134 qzbcdvq")})
    assert _found(root, ["4111", "0134", "qzbcdvq"]) == set()


def test_png_text_chunks_are_read(tmp_path):
    itxt = b"Title\0\1\0en\0Titel\0" + zlib.compress("card 4111 1111".encode())
    root = _release(tmp_path / "r", {
        "plots/a.png": _png(_chunk(b"tEXt", b"Comment\0ref qzbcdvq")),
        "plots/b.png": _png(_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"call 0134"))),
        "plots/c.png": _png(_chunk(b"iTXt", itxt))})
    assert _found(root, ["qzbcdvq", "0134", "4111"]) == {
        ("plots/a.png", "qzbcdvq"), ("plots/b.png", "0134"), ("plots/c.png", "4111")}


def test_stored_numbers_are_not_text(tmp_path):
    """Float centroids in Parquet and JSON, counts in a numeric CSV column: no canary in their digits."""
    table = pa.table({"id": ["0.0", "0.1"], "size": [34111, 20], "share": [0.41115, 0.0134],
                      "centroid": [[0.04119362682104111, -0.02013443782925], [4111.5, 1.4111e-05]]})
    pq.write_table(table, tmp_path / "clusters.parquet")
    tree = {"levels": [{"centroid": [[0.4111, 0.020134437829256058]]}], "nodes": [[{"id": "1.0", "name": "Cards"}]]}
    root = _release(tmp_path / "r", {"clusters.parquet": (tmp_path / "clusters.parquet").read_bytes(),
                                     "tree.json": json.dumps(tree),
                                     "aggregates.csv": "facet,variable,value\nglobal,count,4111\nglobal,share,0.4111\n",
                                     "report.md": "Sizes 34111 and 0.41115; digest 3f2a4111fe9c0b7d1e2a3b4c5d6e7f80, "
                                                  "4111.5 records.\n"})
    assert _found(root, ["4111", "0134"]) == set()


def test_numeric_canary_found_as_a_whole_number_in_text(tmp_path):
    table = pa.table({"id": ["0.0"], "examples": [["My card 4111-1111-1111-1111 was declined"]],
                      "size": [40]})
    pq.write_table(table, tmp_path / "clusters.parquet")
    root = _release(tmp_path / "r", {"clusters.parquet": (tmp_path / "clusters.parquet").read_bytes(),
                                     "tree.json": json.dumps({"nodes": [[{"name": "Call 0134"}]]}),
                                     "aggregates.csv": "cluster,example\n0.0,ref 4111\n0.1,none\n",
                                     "report.md": "- Contact Jenny0134 (a digit canary beside letters).\n",
                                     "explorer.html": "<p>card 4111 1111</p>"})
    assert _found(root, ["4111", "0134"]) == {
        ("clusters.parquet", "4111"), ("tree.json", "0134"), ("aggregates.csv", "4111"), ("report.md", "0134"),
        ("explorer.html", "4111")}


def test_word_canaries_still_match_inside_text(tmp_path):
    root = _release(tmp_path / "r", {"report.md": "**Loans**: xqzbcdvqx\n",
                                     "tree.json": json.dumps({"name": "Refqzfghvq"})})
    assert _found(root, ["qzbcdvq", "qzfghvq"]) == {("report.md", "qzbcdvq"), ("tree.json", "qzfghvq")}


def test_a_canary_is_found_in_any_case_and_unicode_form(tmp_path):
    """The namers publish names lower-cased and NFKC-folded: a planted "Ref-X7Q9" that reached a name reads
    "ref-x7q9" and passed a case-sensitive scan; a full-width "ＱＺＷ８８" copy is the same token too."""
    root = _release(tmp_path / "r", {"tree.json": json.dumps({"name": "Lost card ref-x7q9"}),
                                     "report.md": "Topic ｑｚｗ８８ and more\n"})
    assert _found(root, ["Ref-X7Q9", "QZW88"]) == {("tree.json", "Ref-X7Q9"), ("report.md", "QZW88")}


def test_a_canary_is_found_beside_characters_that_normalise_to_digits_and_with_invisible_characters(tmp_path):
    """NFKC turns "4111²" into "41112", so a scan of the normalised text alone missed the whole number 4111; a
    canary written with a zero-width non-joiner ("محمدی‌زاده") never matched the published text, which has none."""
    root = _release(tmp_path / "r", {"report.md": "Account 4111\u00b2 and \u2460 more\n",
                                     "tree.json": json.dumps({"name": "محمدیزاده"})})
    found = _found(root, ["4111", "محمدی\u200cزاده"])  # (the second token's name is written as repr escapes it)
    assert ("report.md", "4111") in found and {file for file, _ in found} == {"report.md", "tree.json"}, found


def test_a_canary_is_found_as_a_browser_shows_the_page(tmp_path):
    """The explorer writes "&" as \\u0026 inside its script data, and a page may write an entity ("&amp;", a soft
    hyphen "&shy;" inside a word): read raw, "Q&A-ZX91" and "qzwkvq" were missed (a review)."""
    page = ('<script type="application/json" id="clio-data">{"name": "Q\\u0026A-ZX91 \\u0437\\u0430\\u043a\\u0430\\u0437"}'
            '</script><p>qzw&shy;kvq and R&amp;D-77</p>')
    root = _release(tmp_path / "r", {"explorer.html": page})
    assert _found(root, ["Q&A-ZX91", "qzwkvq", "R&D-77", "заказ"]) == {
        ("explorer.html", "Q&A-ZX91"), ("explorer.html", "qzwkvq"), ("explorer.html", "R&D-77"),
        ("explorer.html", "заказ")}


def test_clean_release_with_a_numeric_canary_exits_ok(tmp_path, capsys):
    root = _release(tmp_path / "r", {"plots/sizes.png": _png(pixels=b"]\xba4111\x9c?"),
                                     "report.md": "Top clusters: 0.41115 of records.\n"})
    tokens = tmp_path / "c.txt"
    tokens.write_text("4111\n")
    assert main(["audit", str(root), "--canary-file", str(tokens)]) == EXIT_OK, capsys.readouterr().out
    (root / "report.md").write_text("Card 4111 was declined.\n")
    assert main(["audit", str(root), "--canary-file", str(tokens)]) == EXIT_VIOLATIONS


def test_a_canary_file_written_with_a_byte_order_mark_finds_its_first_token(tmp_path, capsys):
    """Notepad writes a BOM: it was read as part of the first token ('\\ufeffPayFlex'), which then matched nothing."""
    root = _release(tmp_path / "r", {"report.md": "Top cluster: PayFlex refunds\n"})
    tokens = tmp_path / "c.txt"
    tokens.write_bytes("PayFlex\r\nqzwkvq\r\n".encode("utf-8-sig"))
    assert main(["audit", str(root), "--canary-file", str(tokens)]) == EXIT_VIOLATIONS
    assert "'PayFlex'" in capsys.readouterr().out


def test_text_columns_of_the_engines_csvs_are_scanned_even_when_every_cell_is_a_number(tmp_path):
    """A facet of numbers (zip codes, account fragments) puts nothing but digits in aggregates.csv's cluster_name and
    compare.csv's value columns: they are text columns all the same. A CSV of unknown layout keeps the guess from its
    cells (a column of numbers alone is stored numbers)."""
    aggregates = ("geo_id,geography,facet,level,variable,cluster_name,value\n"
                  "GLOBAL,global,zip,0,usage_count,4111,40\nGLOBAL,global,zip,0,usage_count,2200,41\n")
    compare = "dimension,value,share_a_pct,share_b_pct\nzip,0134,1.5,2.5\nzip,2200,3.0,1.0\n"
    other = "code,n\n4111,1\n0134,2\n"
    root = _release(tmp_path / "r", {"aggregates.csv": aggregates, "compare/compare.csv": compare, "other.csv": other})
    assert _found(root, ["4111", "0134"]) == {("aggregates.csv", "4111"), ("compare/compare.csv", "0134")}
