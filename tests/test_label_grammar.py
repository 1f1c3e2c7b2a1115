"""A labelled answer's shape as a decoding constraint for vLLM (a regex in `structured_outputs`), SGLang (the regex
in `regex`) and llama.cpp's server (a GBNF `grammar`), sent by the openai backend with
`llm.server_writes_labels: vllm | sglang | llama.cpp`.

Found: only `clio-engine serve-llm` could be made to answer "Name: …" / "Description: …" (its `clio_skeleton`
field); a small model served by vLLM, SGLang or llama.cpp answered in prose again. The constraints are checked
with xgrammar, the engine vLLM and SGLang compile structured outputs with by default (its EBNF reads llama.cpp's
GBNF): what they accept,
and a real constrained decode of a random model, with the control that the same model unconstrained cannot
answer in the shape."""
from __future__ import annotations

import re

import pytest

from clio_engine.config import load_config
from clio_engine.errors import ConfigError
from clio_engine.llm import Generator, Request
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.facets.prompts import COLLABORATION
from clio_engine.hierarchy.clio import DistinctList
from clio_engine.llm.formats import Choice, Fields, Line, NumberedList, Score, _clean
from clio_engine.llm.label_grammar import (CHOICES_FIELD, GRAMMAR_VERSION, SKELETON_FIELD, answer_fields, answer_gbnf,
                                           answer_regex, label_gbnf, label_regex, request_fields)
from tests.fake_llm_servers import FakeServer

xgr = pytest.importorskip("xgrammar", reason="xgrammar (the dev extra) checks the constraints as vLLM compiles them")
from xgrammar.testing import _is_grammar_accept_string  # noqa: E402

pytestmark = pytest.mark.unit

FORMAT = Fields(("name", "description"))
SKELETON = FORMAT.skeleton
BOUNDED = Fields(("name", "description"), max_words=(3, 5))  # the namer's is (10, 80)

ANSWERS = [  # (answer, in the shape)
    ("Name: Set an alarm\nDescription: People ask the assistant to set alarms.", True),
    ("Name:Set an alarm\nDescription:\tPeople set alarms.", True),
    ("Name: a\r\nDescription: b", True),
    ("Name:\nDescription: People set alarms.", False),            # a blank name
    ("Name:   \nDescription: People set alarms.", False),         # a name of spaces
    ("Name: Set an alarm\nDescription: x\nAnd more.", False),      # text after the last line
    ("Name: Set an alarm", False),                                # a missing label
    ("Description: x\nName: y", False),                           # labels out of order
    ("Sure! Name: Set an alarm\nDescription: x", False),          # prose before the first label
    ("name: Set an alarm\nDescription: x", False),                # the label as sent, not any case
    ("The group is about alarms.", False),
    # lines whose only characters formats._clean strips or str.split() drops (review finding: these passed the
    # first constraint, which asked only for a character other than a space or tab, and then failed to parse)
    ("Name: **\nDescription: x", False),
    ('Name: ""\nDescription: x', False),
    ("Name: __\nDescription: x", False),
    ("Name: x\nDescription: ```", False),
    ("Name: \u00a0\u2003\nDescription: x", False),
    ("Name: \x1c\x85\nDescription: x", False),
    ("Name: **Set an alarm**\nDescription: “People set alarms.”", True),
    ("Name: _x_\nDescription: 名前", True),
]


def _accepts(kind: str, skeleton: tuple[str, ...], text: str, max_words=None) -> bool:
    if kind == "python regex":
        return re.fullmatch(label_regex(skeleton, max_words), text) is not None
    grammar = xgr.Grammar.from_regex(label_regex(skeleton, max_words)) if kind == "vllm regex" else \
        xgr.Grammar.from_ebnf(label_gbnf(skeleton, max_words))
    return _is_grammar_accept_string(grammar, text)


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
@pytest.mark.parametrize("max_words", [None, (10, 80)], ids=["unbounded", "bounded"])
def test_the_constraint_accepts_the_answers_in_the_shape_and_no_others(kind, max_words):
    for text, in_shape in ANSWERS:
        assert _accepts(kind, SKELETON, text, max_words) is in_shape, text
        if in_shape:  # whatever the server lets through, the parser reads in full
            parsed = FORMAT.parse(text)
            assert parsed["name"].strip() and parsed["description"].strip()


BLANK_RUNS = [" ", "\t", "  ", "\u3000", " \u00a0"]


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
def test_a_bounded_line_holds_at_most_its_words_as_the_parser_counts_them(kind):
    """Found: the constraint let a line run on, so SmolLM2 looping in its name line ("Decentralized
    Decentralized …") on llama.cpp spent the whole budget there and never wrote "Description:" (4 of 208
    answers). With `Fields.max_words` the line ends at the parser's own cut: n words pass, n + 1 do not, however
    the words are spaced, and the parser reads every word the constraint let through."""
    for n_name, n_desc in [(1, 2), (3, 5)]:
        bounds = (n_name, n_desc)
        for i, gap in enumerate(BLANK_RUNS):
            words = [f"w{j}" for j in range(n_name + 1)]
            lead = ["", " ", " **", "\u201c"][i % 4]
            fits = f"Name:{lead}{gap.join(words[:n_name])}{gap[:1]}\nDescription: " + " ".join(["d"] * n_desc)
            assert _accepts(kind, SKELETON, fits, bounds), repr(fits)
            parsed = Fields(("name", "description"), max_words=bounds).parse(fits)
            assert parsed["name"].split() == words[:n_name] and len(parsed["description"].split()) == n_desc
            over = f"Name:{lead}{gap.join(words)}\nDescription: d"
            assert not _accepts(kind, SKELETON, over, bounds), repr(over)
            assert _accepts(kind, SKELETON, over, None)  # the control: unbounded, the same line passes
        long_description = "Name: a\nDescription: " + " ".join(["d"] * (n_desc + 1))
        assert not _accepts(kind, SKELETON, long_description, bounds)
        assert _accepts(kind, SKELETON, long_description, (n_name, None))  # None: that label's line is unbounded
        assert _accepts(kind, SKELETON, long_description, (n_name,))  # a shorter tuple leaves the rest unbounded


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
def test_the_parser_reads_every_word_a_bounded_constraint_lets_through(kind):
    """Random lines over words, marks, quotes and blanks: wherever the bounded constraint accepts a line, the
    parser (with no cut of its own) reads a name of at most the bound's words. Found in review: a first word of
    marks only ("* Alarm") was taken as leading marks by the constraint but as a word by the parser, which then
    cut the name's last real word (or gave the name "*")."""
    import random

    rng = random.Random(0)
    pieces = ["a", "bc", "名", "*", "_", "**", '"', "'", "“", " ", " ", "\t", "\u3000"]
    accepted = 0
    for _ in range(400):
        n = rng.randint(1, 4)
        name = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        text = f"Name:{name}\nDescription: d"
        if not _accepts(kind, SKELETON, text, (n, 3)):
            continue
        accepted += 1
        read = FORMAT.parse(text)["name"].split()
        assert 1 <= len(read) <= n, (repr(text), n, read)
    assert accepted >= 50  # the draw reaches the constraint's accepting side, not only its refusals


def test_a_bound_is_a_whole_number_not_a_flag():
    with pytest.raises(ValueError, match="max_words needs a whole number"):
        label_gbnf(SKELETON, (True, 5))


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
def test_every_run_in_a_bounded_line_is_bounded(kind):
    """A model can loop on blanks or inside one word as well as on words: the leading marks, each gap, each word
    and the trailing blanks are bounded, so a bounded line has a bounded length."""
    from clio_engine.llm.label_grammar import MAX_GAP, MAX_LEAD, MAX_TRAIL, MAX_WORD_CHARS

    line = lambda name: f"Name:{name}\nDescription: d"  # noqa: E731
    bounds = (3, 3)
    assert _accepts(kind, SKELETON, line(" " * MAX_LEAD + "a"), bounds)
    assert not _accepts(kind, SKELETON, line(" " * (MAX_LEAD + 1) + "a"), bounds)
    assert _accepts(kind, SKELETON, line(" " + "x" * MAX_WORD_CHARS + " " * MAX_GAP + "y" * MAX_WORD_CHARS), bounds)
    assert not _accepts(kind, SKELETON, line(" " + "x" * (MAX_WORD_CHARS + 1)), bounds)
    assert not _accepts(kind, SKELETON, line(" a" + " " * (MAX_GAP + 1) + "b"), bounds)
    assert not _accepts(kind, SKELETON, line(" a b" + "y" * MAX_WORD_CHARS), bounds)
    assert _accepts(kind, SKELETON, line(" a" + "\r" + " " * (MAX_TRAIL - 1)), bounds)
    assert not _accepts(kind, SKELETON, line(" a" + " " * (MAX_TRAIL + 1)), bounds)
    assert _accepts(kind, SKELETON, line(" a" + " " * 40), None)  # unbounded lines are as before


def test_bad_word_bounds_are_refused_with_what_is_wrong():
    for bad in [(0, 5), (3, 5, 7), (2.5,), ("3",)]:
        with pytest.raises(ValueError, match="max_words needs a whole number"):
            label_regex(SKELETON, bad)


def test_the_regex_and_the_grammar_agree_with_the_parser_on_every_kind_of_character():
    """One-character lines over Python's whitespace, the quote and emphasis marks and a sample of the rest: the
    regex (as xgrammar and Python read it) and the grammar accept a line exactly where the parser finds a value
    with a character other than a mark (a lone "*" parses as the name "*": refused on purpose)."""
    from clio_engine.llm.label_grammar import BLANKS, MARKS

    assert set(BLANKS) == {chr(c) for c in range(0x110000) if chr(c).isspace()} - {"\n"}
    sample = BLANKS + MARKS + "a Z 0 - # . ! ? < > ~ \\ / é 名 😀 \u200b \x00 \x7f".replace(" ", "")
    for ch in sample:
        text = f"Name: {ch}\nDescription: x"
        try:
            readable = bool(set(FORMAT.parse(text)["name"]) - set(MARKS))
        except ValueError:
            readable = False
        verdicts = {(kind, bounds): _accepts(kind, SKELETON, text, bounds)
                    for kind in ("vllm regex", "llama.cpp gbnf", "python regex") for bounds in (None, (1, 1))}
        assert set(verdicts.values()) == {readable}, (hex(ord(ch)), readable, verdicts)


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
def test_labels_with_the_grammars_special_characters_are_matched_literally(kind):
    skeleton = ('Q"uo\\te.*:', "\n[A] (b)|c?:")
    assert _accepts(kind, skeleton, 'Q"uo\\te.*: x\n[A] (b)|c?: y')
    assert not _accepts(kind, skeleton, 'Q"uo\\teXX: x\n[A] (b)|c?: y')  # "." and "*" are not wildcards here
    assert not _accepts(kind, skeleton, 'Q"uo\\te.*: x\nA b: y')


def _line_ending_noise_model(tmp_path):
    """A random 1-layer Llama with a cased byte-level BPE vocabulary (the kind vLLM and llama.cpp serve; the
    tiny WordPiece one is lower case and cannot write "Name:") and a processor that makes it end its line after
    six tokens, as a real model does: noise that breaks lines, so only a constraint gives it the labels."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, LogitsProcessor, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    corpus = ["Name: Set an alarm\nDescription: People ask the assistant to set alarms for the morning.",
              "Questions about train times, tickets and the weather; name each group of texts."] * 20
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    lm = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                      num_attention_heads=2, num_key_value_heads=1, eos_token_id=tok.eos_token_id,
                                      pad_token_id=tok.pad_token_id, bos_token_id=tok.eos_token_id)).eval()
    newline = tok.convert_tokens_to_ids(bpe._tokenizer.pre_tokenizer.pre_tokenize_str("\n")[0][0])

    class EndLines(LogitsProcessor):
        def __call__(self, input_ids, scores):
            for row, ids in enumerate(input_ids.tolist()):
                since = ids[::-1].index(newline) if newline in ids else len(ids)
                if since >= 6:
                    scores[row, newline] += 1e4
            return scores

    return tok, lm, EndLines()


@pytest.mark.parametrize("server", ["vllm", "sglang", "llama.cpp"])
def test_a_model_decoding_under_the_constraint_answers_in_the_shape(server, tmp_path):
    from transformers import LogitsProcessorList
    from xgrammar.contrib.hf import LogitsProcessor as Constrained

    tok, lm, end_lines = _line_ending_noise_model(tmp_path)
    info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok))
    compiler = xgr.GrammarCompiler(info)
    fields = request_fields(server, SKELETON)
    compiled = {"vllm": lambda: compiler.compile_regex(fields["structured_outputs"]["regex"]),
                "sglang": lambda: compiler.compile_regex(fields["regex"]),
                "llama.cpp": lambda: compiler.compile_grammar(fields["grammar"])}[server]()
    prompt = tok(["Name the group of texts: set an alarm for six"], return_tensors="pt")

    def answer(*processors) -> str:
        out = lm.generate(**prompt, max_new_tokens=40, do_sample=False, logits_processor=LogitsProcessorList(processors))
        return tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)

    constrained = answer(end_lines, Constrained(compiled))
    parsed = FORMAT.parse(constrained)
    assert parsed["name"].strip() and parsed["description"].strip(), constrained
    assert constrained.startswith("Name:") and constrained.count("\n") == 1
    free = answer(end_lines)  # the control: the same noise, unconstrained, has no labels
    with pytest.raises(ValueError):
        FORMAT.parse(free)


def _never_ending_answer(tmp_path):
    """`answer(server, fields, budget) -> text`: greedy noise (`_line_ending_noise_model`'s model) that never writes
    a line break (as SmolLM2 looping in a line), decoded under `fields` (`request_fields` / `answer_fields`)
    compiled as `server` compiles it."""
    from transformers import LogitsProcessor, LogitsProcessorList
    from xgrammar.contrib.hf import LogitsProcessor as Constrained

    tok, lm, _ = _line_ending_noise_model(tmp_path)
    breaks = [i for i in range(len(tok)) if "\n" in tok.decode([i])]

    class NeverEndLines(LogitsProcessor):
        def __call__(self, input_ids, scores):
            scores[:, breaks] -= 1e4  # last of every allowed token, never removed: the constraint may still force it
            return scores

    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok)))
    prompt = tok(["Name the group of texts: set an alarm for six"], return_tensors="pt")

    def answer(server: str, fields: dict, budget: int) -> str:
        compiled = compiler.compile_grammar(fields["grammar"]) if server == "llama.cpp" else \
            compiler.compile_regex(fields["structured_outputs"]["regex"] if server == "vllm" else fields["regex"])
        out = lm.generate(**prompt, max_new_tokens=budget, do_sample=False,
                          logits_processor=LogitsProcessorList([NeverEndLines(), Constrained(compiled)]))
        return tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)

    return answer


@pytest.mark.parametrize("server", ["vllm", "sglang", "llama.cpp"])
def test_a_model_that_never_ends_its_line_reaches_every_label_under_a_bounded_constraint(server, tmp_path):
    """A model that never writes a line break (as SmolLM2 looping in its name line): unbounded, the constraint
    lets the name line take the whole budget and the answer has no description (the control); bounded by the
    format's words, the constraint ends each line and the answer parses, within the bound's token count."""
    from clio_engine.llm.label_grammar import MAX_GAP, MAX_LEAD, MAX_TRAIL, MAX_WORD_CHARS

    answer = _never_ending_answer(tmp_path)
    bounds = (1, 2)
    # each token writes at least one character: the bounded lines' characters bound the tokens
    budget = sum(MAX_LEAD + n * (MAX_GAP + MAX_WORD_CHARS) + MAX_TRAIL for n in bounds) + len("".join(SKELETON))
    unbounded = answer(server, request_fields(server, SKELETON, None), budget)
    assert "\n" not in unbounded  # the control: the name line took the whole budget
    with pytest.raises(ValueError, match="Description"):
        BOUNDED.parse(unbounded)
    bounded = answer(server, request_fields(server, SKELETON, bounds), budget)
    parsed = Fields(("name", "description"), max_words=bounds).parse(bounded)
    assert bounded.startswith("Name:") and bounded.count("\n") == 1, bounded
    name_line, description_line = bounded.split("\n")
    assert len(name_line[len("Name:"):].split()) <= 1 and len(description_line[len("Description:"):].split()) <= 2
    assert parsed["name"] and parsed["description"]


@pytest.mark.parametrize("setting, field", [(True, SKELETON_FIELD), ("clio", SKELETON_FIELD),
                                            ("vllm", "structured_outputs"), ("sglang", "regex"), ("llama.cpp", "grammar")])
def test_the_openai_backend_sends_the_servers_own_constraint(setting, field, tmp_path):
    """Only the named server's field goes out, only with a labelled format, with the constraint `label_grammar`
    builds from the format's labels and word bounds; each setting caches apart, and off keeps the identity it had
    before the setting existed."""
    fields = {SKELETON_FIELD, CHOICES_FIELD, "structured_outputs", "regex", "grammar"}
    others = fields - {field}
    with FakeServer("openai") as srv:
        srv.responder = lambda system, prompt, body: "Name: Alarms\nDescription: Setting alarms."
        backend = OpenAIBackend("m", base_url=srv.url + "/v1", server_writes_labels=setting)
        results = Generator(backend, cache_dir=tmp_path, progress=False, backoff_s=0.0).generate(
            [Request.user("Name this group.", schema=BOUNDED, max_tokens=40), Request.user("Say hi.", max_tokens=5)])
        assert all(r.ok for r in results), [r.error for r in results]
        labelled = next(b for b in srv.bodies if "Name this group." in str(b["messages"]))
        plain = next(b for b in srv.bodies if "Say hi." in str(b["messages"]))
    sent = request_fields("clio" if setting is True else setting, SKELETON, BOUNDED.max_words)[field]
    assert labelled[field] == sent  # the format's word bounds go out with the labels
    if field != SKELETON_FIELD:  # serve-llm bounds a line by its share of the tokens instead
        assert sent != request_fields(setting, SKELETON)[field]
    assert not others & set(labelled) and not fields & set(plain)
    identity = lambda s: OpenAIBackend("m", base_url="u", server_writes_labels=s).cache_identity(0.0)  # noqa: E731
    assert identity(False) == {"base_url": "u", "native_structured": True}
    assert len({str(identity(s)) for s in (False, True, "vllm", "sglang", "llama.cpp")}) == 5
    assert identity("clio") == identity(True)  # one setting, two spellings
    assert identity(True)["label_grammar"] == GRAMMAR_VERSION  # serve-llm now chooses scores and choices too
    assert identity("vllm")["label_grammar"] == GRAMMAR_VERSION  # a changed constraint does not reuse old answers


def test_the_setting_names_its_choices_when_it_is_wrong():
    assert load_config(None, {"llm.server_writes_labels": "llama.cpp"}).llm.server_writes_labels == "llama.cpp"
    with pytest.raises(ConfigError, match=r"config key 'llm.server_writes_labels' expects one of False, True, "
                                          r"'clio', 'vllm', 'sglang', 'llama.cpp', got 'ollama'"):
        load_config(None, {"llm.server_writes_labels": "ollama"})
    with pytest.raises(ValueError, match="server_writes_labels is 'ollama'"):
        OpenAIBackend("m", server_writes_labels="ollama")
    with pytest.raises(ValueError, match="non-blank labels"):
        label_regex(("Name:", "  "))


# ---------------------------------------------------------------- the stages' other text formats

OTHER_FORMATS = {  # name: (format, answers in its shape, answers out of it)
    "score": (Score(1, 5), ["1", "3", "5"], ["0", "6", "3.", " 3", "3 ", "three", "I rate it 3", "12", "01", ""]),
    "wide score": (Score(1, 12), ["1", "9", "10", "12"], ["13", "0", "1 2"]),
    "choice": (Choice(COLLABORATION), list(COLLABORATION),
               ["Directive", "none.", "directive, learning", "iteration", " none", ""]),
    "digit choice": (Choice(("1", "2", "3")), ["1", "3"], ["4", "1.", "(1)"]),
    "line": (Line(3, "language"), ["English", "**English** and French", "“English” and French", "```English",
                                   "English (UK)", "English, 10:30"],
             ["", "**", '""', "a b c d", "English\nFrench", "   ",
              # review findings: a label alone parses as empty, a line break inside the line loses its tail
              "Language:", "Answer: **", "`language:`", "Language：", "Answer **:", "Language :", "English\u2028French",
              "English\rFrench", "English\x1cFrench", "English **"]),
    "list": (NumberedList(2, 3), ["1. a\n2. b", "1. Alarms\n2. Weather\n3. Music", "10. x\n2. *y*",
                                 "1. ```abc\n2. b"],
             ["1. a", "1. a\n2. b\r", "1. a\n2. b\n3. c\n4. d", "1.a\n2. b", "- a\n- b", "1. a\n\n2. b", "1. **\n2. b", '1. ""\n2. b',
              "1. a\u2028b\n2. c", "1. a\x1cb\n2. c", "Sure:\n1. a\n2. b", "1. a\n2. b\n"]),
    # a repeated category does not count towards DistinctList's items, so its lines are not bounded
    "distinct list": (DistinctList(2, 3), ["1. a\n2. a\n3. a\n4. b", "1. a\n2. b"], ["1. a", "1. a\n"]),
    "empty list": (NumberedList(0, 2), ["", "1. a", "1. a\n2. b"], ["1. a\n2. b\n3. c", "\n"]),
    # each item at most two words as the parser counts them, every run bounded (MAX_LEAD, MAX_GAP, MAX_TRAIL)
    "bounded list": (NumberedList(1, 3, 2), ["1. a b", "1. **Alarm** set\n2. x", "1.  a\tb  ", "2. “a” b",
                                             "1. " + " " * 8 + "a", "1. a" + " " * 4 + "b"],
                     ["1. a b c", "1. a b\n2. c d e", "1. * Alarm", "1. a" + " " * 5 + "b", "1. " + " " * 9 + "a",
                      "1. a   ", "1. a\u2028b", "1. a b\r", "1. " + "x" * 101, "1. **", "1. a\n"]),
    "bounded distinct list": (DistinctList(2, 3, 1), ["1. a\n2. a\n3. b"], ["1. a\n2. b c", "1. a"]),
}


def _accepts_answer(kind: str, fmt, text: str) -> bool:
    if kind == "python regex":
        return re.fullmatch(answer_regex(fmt), text) is not None
    grammar = xgr.Grammar.from_regex(answer_regex(fmt)) if kind == "vllm regex" else xgr.Grammar.from_ebnf(answer_gbnf(fmt))
    return _is_grammar_accept_string(grammar, text)


def _read_in_full(fmt, text: str) -> None:
    """The parser reads all of an accepted answer: the score or option written, the line's words, every item."""
    parsed = fmt.parse(text)
    if isinstance(fmt, Score):
        assert parsed == int(text)
    elif isinstance(fmt, Choice):
        assert parsed == text
    elif isinstance(fmt, Line):  # every word written, cleaned as the parser cleans the whole line
        assert parsed.split() == _clean(_clean(text)).split(), (text, parsed)
        assert 1 <= len(parsed.split()) <= fmt.max_words
    else:
        lines = text.split("\n") if text else []
        items = NumberedList(0, 10_000).parse(text)  # no cut: what the constraint let through, read whole
        assert len(items) == len(lines), (text, items)
        for line, item in zip(lines, items):  # each item is its whole line after the number
            assert item == _clean(line.split(". ", 1)[1].rstrip()), (line, item)
            assert fmt.max_item_words is None or 1 <= len(item.split()) <= fmt.max_item_words, (line, item)


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
@pytest.mark.parametrize("name", list(OTHER_FORMATS))
def test_each_formats_constraint_accepts_the_answers_its_parser_reads_in_full_and_no_others(kind, name):
    """Found on a real vLLM server (SmolLM2, 40 conversations; RESULTS, "Every stage's answers from a vLLM
    server"): only "Name: …" answers were constrained, and the facets' collaboration choice failed to parse for 38
    of 40 conversations, the concerning score for 4, and 1 of the privacy auditor's 3 scores (each failed audit
    withholds its cluster). A score is now one of its numbers, a
    choice one of its options as spelled, a line at most its words, a list "N. item" lines within its counts."""
    fmt, good, bad = OTHER_FORMATS[name]
    for text in good:
        assert _accepts_answer(kind, fmt, text), repr(text)
        _read_in_full(fmt, text)
    for text in bad:
        assert not _accepts_answer(kind, fmt, text), repr(text)


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
@pytest.mark.parametrize("item_words", [None, 2])
def test_every_list_the_constraint_lets_through_is_read_item_by_item(kind, item_words):
    """Random numbered lines over words, marks, quotes, blanks and the characters str.splitlines() breaks at:
    wherever the constraint accepts, the parser finds one item per line, each the line's whole text (an item
    holding "\\u2028" or "\\x1c" would be split by the parser and lose its tail, or its text), and, where the
    items are bounded, at most that many words as the parser counts them."""
    import random

    rng = random.Random(1)
    pieces = ["a"] * 8 + ["bc", "名", "*", "**", '"', "“", "```", " ", "\t", "\u3000", "\u2028", "\x1c", "\x85", "\r",
                          "\x1f"]
    fmt, accepted = NumberedList(1, 4, item_words), 0
    for _ in range(300):
        lines = [f"{rng.randint(1, 12)}. " + "".join(rng.choice(pieces) for _ in range(rng.randint(1, 5)))
                 for _ in range(rng.randint(1, 3))]
        text = "\n".join(lines)
        if _accepts_answer(kind, fmt, text):
            accepted += 1
            _read_in_full(fmt, text)
    assert accepted >= 40


@pytest.mark.parametrize("kind", ["vllm regex", "llama.cpp gbnf", "python regex"])
def test_every_line_the_constraint_lets_through_is_read_word_by_word(kind):
    """Random lines over words, labels, colons, marks, fences, blanks and the characters str.splitlines() breaks at:
    wherever the Line constraint accepts, the parser reads every word (found in review: "Language:" alone and
    "English\u2028French" were accepted, and parsed as empty and as "English")."""
    import random

    rng = random.Random(2)
    pieces = ["en"] * 6 + ["Language", "answer", ":", "：", "*", "**", "`", "```", '"', " ", " ", "\t", "\u3000",
                          "\u2028", "\x1c", "\r", "\x85"]
    fmt, accepted = Line(4, "language"), 0
    for _ in range(600):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 7)))
        if _accepts_answer(kind, fmt, text):
            accepted += 1
            _read_in_full(fmt, text)
    assert accepted >= 60


def test_formats_without_answers_to_constrain_to_are_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="no answer to constrain to"):
        answer_regex(Score(5, 1))
    with pytest.raises(ValueError, match="no answer to constrain to"):
        answer_gbnf(Choice(("a", " ")))
    with pytest.raises(ValueError, match="max_words needs a whole number"):
        answer_regex(Line(0))
    for unreadable in [Choice(("Yes", "yes")), Choice(("'q'", "b")), Choice(("x__y", "z"))]:
        with pytest.raises(ValueError, match="does not read back as itself"):
            answer_regex(unreadable)
    with pytest.raises(ValueError, match="0 ≤ min_items ≤ max_lines"):
        answer_regex(NumberedList(5, 2))
    for words in [0, True, 2.5]:
        with pytest.raises(ValueError, match="max_item_words needs a whole number ≥ 1"):
            answer_gbnf(NumberedList(1, 2, words))
    with pytest.raises(ValueError, match="no answer constraint for server 'ollama'"):
        answer_fields("ollama", Score(1, 5))


@pytest.mark.parametrize("server", ["vllm", "sglang", "llama.cpp"])
@pytest.mark.parametrize("name", ["score", "choice", "list"])
def test_a_model_decoding_under_a_formats_constraint_answers_what_its_parser_reads(server, name, tmp_path):
    """The noise model under each format's constraint (compiled by xgrammar as the servers do) answers something
    the parser reads in full; the control, the same noise unconstrained, does not parse."""
    from transformers import LogitsProcessorList
    from xgrammar.contrib.hf import LogitsProcessor as Constrained

    fmt = OTHER_FORMATS[name][0]
    tok, lm, end_lines = _line_ending_noise_model(tmp_path)
    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok)))
    fields = answer_fields(server, fmt)
    compiled = compiler.compile_grammar(fields["grammar"]) if server == "llama.cpp" else \
        compiler.compile_regex(fields["structured_outputs"]["regex"] if server == "vllm" else fields["regex"])
    prompt = tok(["Name the group of texts: set an alarm for six"], return_tensors="pt")

    def answer(*processors) -> str:
        out = lm.generate(**prompt, max_new_tokens=40, do_sample=False, logits_processor=LogitsProcessorList(processors))
        return tok.decode(out[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)

    constrained = answer(end_lines, Constrained(compiled))
    _read_in_full(fmt, constrained)
    with pytest.raises(ValueError):
        fmt.parse(answer(end_lines))


@pytest.mark.parametrize("server", ["vllm", "sglang", "llama.cpp"])
def test_a_model_that_never_ends_an_item_reaches_the_lists_next_items_under_bounded_items(server, tmp_path):
    """The list's form of the looping name line: a model that never writes a line break. With unbounded items the
    constraint lets the first item take the whole budget and the list has one item (the control: the parser wants
    two); with `max_item_words` it ends each item at the bound, and the list parses within the bound's tokens."""
    from clio_engine.llm.label_grammar import MAX_GAP, MAX_LEAD, MAX_TRAIL, MAX_WORD_CHARS

    answer = _never_ending_answer(tmp_path)
    items, words = 2, 2
    # each token writes at least one character: the bounded items' characters ("NNN. ", the runs, "\n") bound them
    budget = items * (len("100. ") + 2 * MAX_LEAD + words * (MAX_GAP + MAX_WORD_CHARS) + MAX_TRAIL + 1)
    unbounded = answer(server, answer_fields(server, NumberedList(items, items)), budget)
    assert "\n" not in unbounded  # the control: the first item took the whole budget
    with pytest.raises(ValueError, match="need at least 2"):
        NumberedList(items, items).parse(unbounded)
    bounded = answer(server, answer_fields(server, NumberedList(items, items, words)), budget)
    parsed = NumberedList(items, items, words).parse(bounded)
    assert len(parsed) == items and bounded.count("\n") == items - 1, bounded
    assert all(1 <= len(line.split(". ", 1)[1].split()) <= words for line in bounded.split("\n")), bounded


@pytest.mark.parametrize("setting", [True, "vllm", "sglang", "llama.cpp"])
def test_the_openai_backend_sends_each_formats_constraint(setting, tmp_path):
    """A score, a choice, a line and a list request each carry their own constraint to vLLM, SGLang and llama.cpp;
    serve-llm (true) gets a score's and a choice's answers (`clio_choices`) and nothing for a line or a list, and a
    JSON-schema request gets none anywhere."""
    formats = {"Score it.": (Score(1, 5), "3"), "Pick one.": (Choice(COLLABORATION), "learning"),
               "One line.": (Line(6, "language"), "English"), "List them.": (NumberedList(2, 3), "1. a\n2. b")}
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    field = {True: CHOICES_FIELD, "vllm": "structured_outputs", "sglang": "regex", "llama.cpp": "grammar"}[setting]
    with FakeServer("openai") as srv:
        srv.responder = lambda system, prompt, body: next((a for p, (_, a) in formats.items() if p in prompt), '{"x": 1}')
        backend = OpenAIBackend("m", base_url=srv.url + "/v1", server_writes_labels=setting)
        results = Generator(backend, cache_dir=tmp_path, progress=False, backoff_s=0.0).generate(
            [Request.user(p, schema=f, max_tokens=20) for p, (f, _) in formats.items()]
            + [Request.user("JSON please.", schema=schema, max_tokens=20)])
        assert all(r.ok for r in results), [r.error for r in results]
        bodies = list(srv.bodies)
    constraint_fields = {SKELETON_FIELD, CHOICES_FIELD, "structured_outputs", "regex", "grammar"}
    for prompt, (fmt, _) in formats.items():
        body = next(b for b in bodies if prompt in str(b["messages"]))
        if setting is True and not isinstance(fmt, (Score, Choice)):
            assert not constraint_fields & set(body), body
        else:
            sent = answer_fields("clio" if setting is True else setting, fmt)[field]
            assert body[field] == sent and not (constraint_fields - {field}) & set(body)
    if setting is True:  # serve-llm gets the score's answers as the client would write them
        assert next(b for b in bodies if "Score it." in str(b["messages"]))[CHOICES_FIELD] == ["1", "2", "3", "4", "5"]
    assert len({str(answer_fields("vllm", f)) for f, _ in formats.values()}) == len(formats)
    json_body = next(b for b in bodies if "JSON please." in str(b["messages"]))
    assert not constraint_fields & set(json_body) and json_body["response_format"]["type"] == "json_schema"
