"""Whether a str is valid Unicode: shared by the record readers, the embedder and the LLM generator, with no
heavy imports (the generator must not pull pandas and pyarrow in to check a reply)."""
from __future__ import annotations


def encodable(text: str) -> bool:
    """Whether `text` has a UTF-8 form (a lone surrogate has none: no file, Arrow array or tokenizer takes it)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False
