"""Canary words for privacy tests: one unique token per record, to search every output for."""


def canary_token(i: int) -> str:
    """A unique lower-case word per record that no tokenizer splits and no text contains by chance."""
    letters = "bcdfghjklmnpqrstvwxz"
    word, i = "", i + 1000
    while i:
        word, i = letters[i % 20] + word, i // 20
    return f"qz{word}vq"
