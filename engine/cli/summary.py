"""What a finished run prints: the summary of its manifest, with names made safe for a terminal."""
from __future__ import annotations


def _terminal(text) -> str:
    """A cluster name for the terminal: one line, no bidi/zero-width or control characters (SPEC §4)."""
    from clio_engine.privacy.escape import terminal_text

    return terminal_text(text)


def _top_reasons(reasons) -> str:
    """" (HTTP 400 context_length_exceeded × 12)": the two commonest kinds of failure, for the summary line."""
    if not reasons:
        return ""
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:2]
    return " (" + "; ".join(f"{_terminal(kind)} × {n:,}" for kind, n in top) + (", …" if len(reasons) > 2 else "") + ")"


def _print_summary(result) -> None:
    from clio_engine.pipeline.report import null_users_note

    m = result.manifest
    inp = m["input"]
    noise = (m["stages"].get("cluster") or {}).get("noise")
    print(f"{inp['rows']:,} rows: {inp['accepted']:,} accepted" + (f" ({noise:,} of them HDBSCAN noise, in no cluster)"
          if noise else "") + f", {inp['rejected']:,} rejected; {m['users']['note']}{null_users_note(inp)}")
    print(f"levels (base → top): {' → '.join(map(str, m['levels']))}; published per level: "
          + ", ".join(f"{lv['published']}/{lv['nodes']}" for lv in m["privacy"]["levels"]))
    stages = m["run"]["stages"]
    print("stages: " + ", ".join(f"{k} {v['seconds']:.1f}s" + (" (cached)" if v["reused"] else "") for k, v in stages.items()))
    llm = (m.get("llm") or {}).get("total")
    if llm:
        print(f"LLM: {llm.get('requests', 0):,} requests ({llm.get('cached', 0):,} cached), {llm.get('calls', 0):,} calls, "
              f"{llm.get('prompt_tokens', 0) + llm.get('completion_tokens', 0):,} tokens, {llm.get('failures', 0):,} "
              f"failures{_top_reasons(llm.get('failure_reasons'))}, ${llm.get('cost_usd', 0):.4f}")
    print("top-level clusters:")
    for row in result.top_clusters().itertuples():
        size = "suppressed" if row.size is None or row.size != row.size else f"{int(row.size):,}"
        # a 10-word name would push its row's columns out; a Chinese one is twice as wide as its length
        print(f"  {row.share:6.1%}  {fit_width(_terminal(row.name), 40)} {size:>10s} records")


def display_width(text: str) -> int:
    """Terminal columns `text` takes: 2 for a wide or full-width character (CJK, Hangul), 0 for a combining mark
    (a Devanagari vowel sign) or a format character, 1 otherwise."""
    import unicodedata

    def width(ch: str) -> int:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            return 0
        return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return sum(width(ch) for ch in text)


def fit_width(text: str, columns: int) -> str:
    """`text` cut to `columns` terminal columns (its last one "…" where it is cut) and padded to them with spaces."""
    if display_width(text) > columns:
        while display_width(text) > columns - 1:
            text = text[:-1]
        text += "…"
    return text + " " * (columns - display_width(text))
