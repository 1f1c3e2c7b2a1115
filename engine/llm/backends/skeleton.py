"""Writing a labelled answer's fixed text inside one `generate` pass: a logits processor that forces each label.

A `formats.Fields` answer is "Name: …\\nDescription: …". The local backend puts the first label at the end of the
prompt and lets the model write the line after it; when that line ends, this processor forces the next label's
tokens, then the model writes again, and after the last line it forces the end of text. Everything happens in
one `generate` call, so the prompt is read once and its KV cache serves every line (the version before ran one
`generate` per label, re-reading the prompt each time).

Per row, a line ends at a token that holds a line break, at its share of the token budget (what is left split
over the lines still to come, so a model that never ends a line still reaches every label), or — before the
last line — where the model would end its text: that probability is moved onto the line break, since a row
that emits its end of text is finished for `generate` and could not get its next label. A line may not end
before its first token. A row out of budget on its last line is truncated.

`SkeletonForcing.lines` holds each row's model tokens per line; `answer()` rebuilds the text from the labels
(as strings, exactly as the format spells them) and each line's decoded text up to its line break.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class _Row:
    piece: int = 0  # the label whose line the model is writing (0: the prompt's own last label)
    line: list[int] = field(default_factory=list)  # the model's tokens on that line so far
    lines: list[list[int]] = field(default_factory=list)  # finished lines' tokens
    used: int = 0  # model tokens spent (its end of text counted), never the forced ones
    share: int = 1  # the most tokens this line may take
    forced: deque = field(default_factory=deque)  # tokens still to force, in order
    forcing: bool = False  # the token chosen at the last step was forced
    done: bool = False  # the row's end of text was chosen
    truncated: bool = False  # its last line ran out of budget


class SkeletonForcing:
    """A `generate` logits processor over rows [B] that writes `pieces[1:]` and the end of text around the
    model's lines. `pieces[0]` must already end each prompt; `label_ids[k]` are the tokens of `pieces[k]`
    (k ≥ 1) and `label_ids_after_break[k]` those of the piece without its leading line break (used where the
    model's own token ended the line). `prompt_len` is the padded prompt's length [B, prompt_len].
    `eos_id` is the end of text forced after the last line; `end_ids` every other token that ends generation
    (a generation config may list several: Llama 3's <|eom_id|>, Qwen's <|endoftext|>), all treated alike.
    `temperature`: the sampling temperature applied after this processor (1 when greedy), so the ends'
    probability moved onto the line break is theirs as sampled."""

    def __init__(self, *, rows: int, prompt_len: int, n_pieces: int, label_ids: list[list[int]],
                 label_ids_after_break: list[list[int]], break_ids: list[int], newline_id: int | None,
                 eos_id: int | None, max_tokens: int, end_ids: tuple[int, ...] = (), temperature: float = 1.0,
                 clean_break_ids: list[int] | None = None):
        self.prompt_len, self.n_pieces, self.max_tokens = prompt_len, n_pieces, max_tokens
        self.label_ids, self.label_ids_after_break = label_ids, label_ids_after_break
        self.break_ids, self._breaks = list(break_ids), set(break_ids)
        # Breaks whose text ends with the line break (".\n", not "\nThe"): after one, the next label goes on
        # without its own break; after another, with it, so the model never reads "TheDescription:".
        self._clean_breaks = set(break_ids if clean_break_ids is None else clean_break_ids)
        self.eos_id = eos_id if eos_id is not None else (end_ids[0] if end_ids else None)
        self.end_ids = sorted({*end_ids, *([self.eos_id] if self.eos_id is not None else [])})
        self._ends = set(self.end_ids)
        self.newline_id, self.temperature = newline_id, temperature
        self.rows = [_Row() for _ in range(rows)]
        for r in self.rows:
            r.share = self._share(r)
        self._seen = 0  # generated tokens already observed

    def max_new_tokens(self) -> int:
        """A bound on the tokens a row can take: the model's budget (each line at least one token), every label
        with its line break, and the end of text."""
        return self.max_tokens + self.n_pieces + sum(len(ids) for ids in self.label_ids[1:]) + 1

    def _share(self, r: _Row) -> int:
        return max(1, (self.max_tokens - r.used) // (self.n_pieces - r.piece))

    # ------------------------------------------------------------------ state

    def observe(self, new: list[list[int]]) -> None:
        """Advance every row over the tokens generated since the last call: new [B, T_new]."""
        for step in range(len(new[0]) if new else 0):
            for r, row in zip(self.rows, new):
                self._advance(r, row[step])
        self._seen += len(new[0]) if new else 0

    def _advance(self, r: _Row, token: int) -> None:
        if r.done:
            return
        if r.forcing:
            r.forcing = False
            r.done = token in self._ends
            return
        r.used += 1
        if token in self._ends:  # possible on the last line only: before it an end of text is a line break
            r.done = True
            self._end_line(r, by_break=True)
            return
        r.line.append(token)
        if token in self._breaks:
            self._end_line(r, by_break=True, clean=token in self._clean_breaks)
        elif len(r.line) >= r.share:
            self._end_line(r, by_break=False)

    def _end_line(self, r: _Row, *, by_break: bool, clean: bool = True) -> None:
        r.lines.append(r.line)
        r.line = []
        r.piece += 1
        if r.piece >= self.n_pieces:
            r.truncated = not by_break
            if self.eos_id is None:  # nothing to force: the row is done, and what `generate` adds is ignored
                r.done = True
            elif not r.done:
                r.forced.append(self.eos_id)
            return
        r.forced.extend(self.label_ids_after_break[r.piece] if by_break and clean else self.label_ids[r.piece])
        r.share = self._share(r)

    # ------------------------------------------------------------------ logits

    def __call__(self, input_ids, scores):
        """scores [B, V] for the next token: a forced token gets all the probability; the first token of a line
        may not be a line break or the end of text; before the last line the end of text becomes a line break."""
        import torch

        self.observe(input_ids[:, self.prompt_len + self._seen:].tolist())
        blocked = float("-inf")
        for i, r in enumerate(self.rows):
            if r.done:
                continue
            if r.forced:
                token = r.forced.popleft()
                r.forcing = True
                scores[i, :] = blocked
                scores[i, token] = 0.0
            elif not r.line:
                scores[i, self.break_ids + self.end_ids] = blocked
            elif r.piece < self.n_pieces - 1 and self.end_ids:
                if self.newline_id is not None:  # p(break) + p(every end), at the temperature applied next
                    merged = scores[i, [self.newline_id, *self.end_ids]] / self.temperature
                    scores[i, self.newline_id] = torch.logsumexp(merged, dim=0) * self.temperature
                scores[i, self.end_ids] = blocked
        return scores

    # ------------------------------------------------------------------ answers

    def finish(self, sequences) -> None:
        """Observe what `generate` returned after its last call here (sequences [B, prompt_len + T]) and mark
        every unfinished row truncated: stopped early (its caller gave up, or the backend stopped)."""
        self.observe(sequences[:, self.prompt_len + self._seen:].tolist())
        for r in self.rows:
            if not r.done:
                r.truncated = True
                if r.line:
                    r.lines.append(r.line)
                    r.line = []

    def answer(self, i: int, pieces: tuple[str, ...], decode) -> str:
        """Row i's answer: each label followed by its line's text (up to its line break, stripped; a label the
        model wrote again at the start of its line is said once)."""
        text = ""
        for piece, line in zip(pieces, self.rows[i].lines + [[]] * len(pieces)):
            label = piece.strip()
            words = decode(line).partition("\n")[0].strip()
            if words.casefold().startswith(label.casefold()):  # "Name: Name: …": the label said twice
                words = words[len(label):].strip()
            text += piece + (" " + words if words else "")
        return text
