"""The labels of a `Fields` answer are forced inside one `generate` pass (`skeleton.SkeletonForcing`).

Found: the local backend ran one `generate` per label, each re-reading the whole prompt (naming prompts hold
up to 100 example texts), so a two-label answer cost about twice a plain call's prompt work. Here a scripted
model (its wish for the next token given per step) drives the processor, and a random Llama counts the
prompt reads of a real backend."""
from __future__ import annotations

import pytest
import torch

from clio_engine.llm.backends.skeleton import SkeletonForcing

pytestmark = pytest.mark.unit

EOS, NL, A, B, DOT_NL, LABEL, COLON, EOM, NL_THE = range(9)  # LABEL, COLON spell labels; EOM ends too
WORDS = {EOS: "", NL: "\n", A: " a", B: " b", DOT_NL: ".\n", LABEL: "Description", COLON: ":", EOM: "", NL_THE: "\nThe"}
PIECES = ("Name:", "\nDescription:")


def forcing(rows: int = 1, max_tokens: int = 8, **kw) -> SkeletonForcing:
    return SkeletonForcing(rows=rows, prompt_len=2, n_pieces=2, label_ids=[[LABEL, COLON], [NL, LABEL, COLON]],
                           label_ids_after_break=[[LABEL, COLON], [LABEL, COLON]], break_ids=[NL, DOT_NL, NL_THE],
                           clean_break_ids=[NL, DOT_NL], newline_id=NL, eos_id=EOS, max_tokens=max_tokens, **kw)


def decode(ids) -> str:
    return "".join(WORDS[i] for i in ids)


def run(proc: SkeletonForcing, wishes: list[list[int]], limit: int = 40) -> list[list[int]]:
    """Greedy decoding of a scripted model: at step t, row i prefers wishes[i][t] (then A, then the rest);
    returns the generated tokens per row, as `generate` would (stopping once every row chose its end)."""
    ids = torch.zeros(len(wishes), 2, dtype=torch.long)  # the (irrelevant) prompt
    finished = [False] * len(wishes)
    for t in range(limit):
        scores = torch.full((len(wishes), len(WORDS)), -5.0)
        for i, wish in enumerate(wishes):
            scores[i, A] = 0.0
            scores[i, wish[t] if t < len(wish) else A] = 5.0
        scores = proc(ids, scores)
        chosen = scores.argmax(dim=1)
        chosen = torch.where(torch.tensor(finished), torch.tensor(EOS), chosen)
        finished = [f or c in (EOS, EOM) for f, c in zip(finished, chosen.tolist())]
        ids = torch.cat([ids, chosen[:, None]], dim=1)
        if all(finished):
            break
    proc.finish(ids)
    return ids[:, 2:].tolist()


def test_a_line_break_ends_the_line_and_the_next_label_is_forced():
    proc = forcing()
    out = run(proc, [[A, B, NL, A, A, B, NL]])  # (the wishes under the forced label are not asked)
    assert decode(out[0]).startswith(" a b\nDescription: b\n")
    assert proc.rows[0].done and not proc.rows[0].truncated
    assert proc.answer(0, PIECES, decode) == "Name: a b\nDescription: b"
    assert proc.rows[0].used == 5  # the model's tokens only; the forced label and end are free


def test_the_models_end_of_text_before_the_last_line_becomes_a_line_break():
    """A row that ends its text is finished for `generate`; before the last label its end is a line end."""
    proc = forcing()
    out = run(proc, [[A, EOS, A, A, B, EOS]])
    assert proc.answer(0, PIECES, decode) == "Name: a\nDescription: b"
    assert out[0][1] == NL  # the end's probability went to the line break
    assert proc.rows[0].done and not proc.rows[0].truncated


def test_a_line_may_not_end_before_its_first_token():
    proc = forcing()
    run(proc, [[NL, B, NL, B, B, EOS, A, NL]])
    # steps: NL refused → A; B; NL ends; the label (2 forced); EOS refused on the new line → A; A; NL ends it
    assert proc.answer(0, PIECES, decode) == "Name: a b\nDescription: a a"


def test_a_line_that_never_ends_gets_its_share_and_the_last_is_truncated():
    proc = forcing(max_tokens=6)
    out = run(proc, [[B] * 40])
    assert proc.answer(0, PIECES, decode) == "Name: b b b\nDescription: b b b"
    assert decode(out[0]) == " b b b\nDescription: b b b"  # the label with its line break, then the end
    assert proc.rows[0].used == 6 and proc.rows[0].truncated


def test_a_token_holding_text_and_a_line_break_keeps_its_text():
    proc = forcing()
    run(proc, [[A, DOT_NL, A, A, B, DOT_NL]])
    assert proc.answer(0, PIECES, decode) == "Name: a.\nDescription: b."


def test_a_break_followed_by_text_gets_the_label_on_a_line_of_its_own():
    """A token such as "\nThe" ends the line, but the label is not glued to its text: the model reads
    "\nThe\nDescription:", never "\nTheDescription:"."""
    proc = forcing()
    out = run(proc, [[A, NL_THE, A, A, A, B, NL]])
    assert decode(out[0]).startswith(" a\nThe\nDescription: b\n")
    assert proc.answer(0, PIECES, decode) == "Name: a\nDescription: b"


def test_rows_of_a_batch_advance_on_their_own():
    proc = forcing(rows=3, max_tokens=6)
    run(proc, [[A, NL, A, A, B, NL], [B] * 12, [A, A, EOS, A, A, B, EOS]])
    assert [proc.answer(i, PIECES, decode) for i in range(3)] == [
        "Name: a\nDescription: b", "Name: b b b\nDescription: b b b", "Name: a a\nDescription: b"]
    assert [r.truncated for r in proc.rows] == [False, True, False]


def test_a_tokenizer_without_an_end_of_text_token_still_gets_every_label():
    """No end-of-text id: nothing is forced after the last line, the row is done there, and the tokens
    `generate` adds until its limit are not part of the answer."""
    proc = SkeletonForcing(rows=1, prompt_len=2, n_pieces=2, label_ids=[[LABEL, COLON], [NL, LABEL, COLON]],
                           label_ids_after_break=[[LABEL, COLON], [LABEL, COLON]], break_ids=[NL, DOT_NL],
                           newline_id=NL, eos_id=None, max_tokens=8)
    run(proc, [[A, NL, A, A, B, NL, B, B, B]], limit=12)
    assert proc.answer(0, PIECES, decode) == "Name: a\nDescription: b"
    assert proc.rows[0].done and not proc.rows[0].truncated and proc.rows[0].used == 4


def test_every_token_that_ends_generation_is_an_end():
    """A generation config may list several ends (Llama 3: <|eot_id|>, <|eom_id|>, <|end_of_text|>); `generate`
    finishes a row at any of them, so before the last line each becomes a line break, and on it each ends."""
    proc = forcing(end_ids=(EOM,))
    out = run(proc, [[A, EOM, A, A, B, EOM]])
    assert out[0][1] == NL and EOM in out[0]
    assert proc.answer(0, PIECES, decode) == "Name: a\nDescription: b"
    assert proc.rows[0].done and not proc.rows[0].truncated and proc.rows[0].used == 4
    first = forcing(end_ids=(EOM,))
    run(first, [[EOM, NL, A]])  # a line's first token may be no end either
    assert first.answer(0, PIECES, decode).startswith("Name: a")


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_moving_the_ends_onto_the_line_break_keeps_the_sampled_distribution(temperature):
    """Sampling divides by the temperature after this processor: the line break must then be drawn with the
    probability the break and every end had at that temperature."""
    proc = forcing(end_ids=(EOM,), temperature=temperature)
    proc(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, len(WORDS)))  # the first step (A is then chosen)
    scores = torch.randn(1, len(WORDS))
    before = (scores / temperature).softmax(dim=1)[0].tolist()
    after = (proc(torch.tensor([[0, 0, A]]), scores.clone()) / temperature).softmax(dim=1)[0].tolist()
    assert after[EOS] == after[EOM] == 0
    assert after[NL] == pytest.approx(before[NL] + before[EOS] + before[EOM], abs=1e-6)
    assert after[B] == pytest.approx(before[B], abs=1e-6)


def test_moving_the_end_onto_the_line_break_keeps_the_distribution():
    """Sampling draws "end the line" with the probability of a line break plus that of the end of text."""
    proc = forcing()
    proc(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, len(WORDS)))  # the first step (A is then chosen)
    scores = torch.randn(1, len(WORDS))
    before = scores.softmax(dim=1)[0].tolist()
    after = proc(torch.tensor([[0, 0, A]]), scores.clone()).softmax(dim=1)[0].tolist()
    assert after[EOS] == 0
    assert after[NL] == pytest.approx(before[NL] + before[EOS], abs=1e-6)
    assert after[B] == pytest.approx(before[B], abs=1e-6)


def test_the_local_backend_reads_the_prompt_once_for_every_label(tiny_llm_dir, tmp_path):
    """Count the model's forward passes over more than one new token (prompt reads): one per batch, where the
    label-by-label version read the prompt once per label."""
    from clio_engine.llm import Generator, Request
    from clio_engine.llm.backends.transformers import TransformersBackend
    from clio_engine.llm.formats import Fields

    backend = TransformersBackend(tiny_llm_dir, device="cpu", batch_size=4)
    requests = [Request.user(f"Name group {i}.", schema=Fields(("name", "description")), max_tokens=10)
                for i in range(3)]
    prompt_reads = []

    def count(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            prompt_reads.append(ids.shape)

    backend._load()
    hook = backend._lm.register_forward_pre_hook(count, with_kwargs=True)
    try:
        results = Generator(backend, cache_dir=tmp_path, progress=False, max_concurrency=4).generate(requests)
    finally:
        hook.remove()
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(prompt_reads) == len(backend.batch_sizes) == 1, prompt_reads


def test_the_vocabularys_line_breaks_are_found_once_per_model(tmp_path):
    """Finding the line-break tokens decodes the whole vocabulary; a later batch on the same loaded model (another
    stage, another backend object) must reuse them instead of decoding each of them again."""
    from clio_engine.llm import Generator, Request
    from clio_engine.llm.backends.transformers import TransformersBackend
    from clio_engine.llm.formats import Fields
    from tests.tiny_models import build_tiny_causal_lm

    model_dir = build_tiny_causal_lm(tmp_path / "model", extra_tokens=("\n", ".\n", "\nthe"))

    def name_groups(first: int) -> TransformersBackend:
        backend = TransformersBackend(model_dir, device="cpu", batch_size=4)
        requests = [Request.user(f"Name group {i}.", schema=Fields(("name", "description")), max_tokens=6)
                    for i in range(first, first + 2)]
        results = Generator(backend, cache_dir=tmp_path / "cache", progress=False).generate(requests)
        assert all(r.ok for r in results), [r.error for r in results]
        return backend

    first = name_groups(0)
    breaks = first._shared.line_breaks.ids
    assert len(breaks) == 3 and first._shared.line_breaks.newline_id == breaks[0]
    assert first._shared.line_breaks.clean_ids == breaks[:2]  # "\n" and ".\n" end in a break; "\nthe" does not
    token_decodes = []  # decodes of one token alone: what finding the line breaks does, token by token
    real_decode = first._tok.decode
    first._tok.decode = lambda ids, *a, **kw: (token_decodes.append(list(ids)) if len(ids) == 1 else None,
                                               real_decode(ids, *a, **kw))[1]
    try:
        second = name_groups(10)
    finally:
        del first._tok.decode
    assert second._tok is first._tok  # the same loaded model, so the same line breaks apply
    redone = [ids for ids in token_decodes if ids[0] in breaks]
    assert not redone, f"{len(redone)} line-break tokens decoded again (of {len(breaks)})"
