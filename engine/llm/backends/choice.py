"""Answering a `Score` or a `Choice` with one of its answers, inside one `generate` pass: a logits processor that
lets each row write only the tokens of one of its options, then its end of text.

SmolLM2-135M asked "which collaboration pattern is this?" answers in prose ("The user asks the assistant to write
code, and …") most of the time, and that answer names no option. Here each step keeps, per row, only the tokens
that continue one of the options it has begun (a trie walk over the options' token ids), and the end of text once
the tokens written spell a whole option. Which option is the model's own choice: greedy decoding takes the most
likely allowed token at each step (sampling samples among them).

An option is tokenised on its own, as the model's answer would start; an option that is a prefix of another ("1"
and "12") may end there or go on.
"""
from __future__ import annotations


class ChoiceForcing:
    """A `generate` logits processor over rows [B]: row b may write only a token sequence of `options[b]` (None: the
    row is free), then one of `end_ids`. Rows share `prompt_len` (left padding); `max_tokens` caps the new tokens,
    the end of text counted."""

    def __init__(self, options: list[list[list[int]] | None], prompt_len: int, end_ids: tuple[int, ...],
                 max_tokens: int | None = None):
        if not end_ids:
            raise ValueError("choice forcing needs the tokenizer's end-of-text id")
        if any(rows is not None and (not rows or any(not ids for ids in rows)) for rows in options):
            raise ValueError("every option must have at least one token")
        if max_tokens is not None:  # only options that fit with their end of text, so a cut never reads as a shorter one
            options = [rows if rows is None else ([ids for ids in rows if len(ids) < max_tokens]
                                                  or [ids for ids in rows if len(ids) <= max_tokens] or rows)
                       for rows in options]
        self.options, self.prompt_len, self.end_ids, self.max_tokens = options, prompt_len, tuple(end_ids), max_tokens

    def max_new_tokens(self) -> int:
        """Tokens enough for the longest option and its end of text, at most `max_tokens` (a row cut there is
        truncated)."""
        need = 1 + max((len(ids) for rows in self.options if rows for ids in rows), default=0)
        return need if self.max_tokens is None else min(need, self.max_tokens)

    def allowed(self, row: int, written: list[int]) -> list[int] | None:
        """The tokens row `row` may write after `written` (its new tokens so far); None: any."""
        rows = self.options[row]
        if rows is None:
            return None
        if any(t in self.end_ids for t in written):  # finished (generate then pads the row): its end only
            return list(self.end_ids)
        n = len(written)
        nxt = {ids[n] for ids in rows if len(ids) > n and ids[:n] == written}
        if any(ids == written for ids in rows):
            nxt.update(self.end_ids)
        return sorted(nxt) or list(self.end_ids)

    def __call__(self, input_ids, scores):
        import torch

        for row in range(scores.shape[0]):
            keep = self.allowed(row, input_ids[row, self.prompt_len:].tolist())
            if keep is None:
                continue
            masked = torch.full_like(scores[row], float("-inf"))
            index = torch.tensor(keep, device=scores.device)
            kept = scores[row, index]
            # another processor may have ruled out every allowed token: choose among them evenly, never off them
            masked[index] = kept if torch.isfinite(kept).any() else torch.zeros_like(kept)
            scores[row] = masked
        return scores
