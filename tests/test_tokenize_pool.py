"""Tokenization in worker processes (clio_engine.tokenize_pool, `embed(tokenizer_workers=)`, issue 14 item 3).

The pool must give the same ids, lengths and truncation counts as tokenizing in one thread, and `embed()`
the same vectors bit for bit whatever the number of workers (real spawned processes, the real tokenizer)."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest

from clio_engine import tokenize_pool
from clio_engine.embed import embed
from clio_engine.errors import InputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bare_tokenizer(tiny_bert_dir):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tiny_bert_dir / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=12)
    return tokenizer


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["Card", "arrival", "when", "will", "my", "new", "PIN", "arrive", "refund", "the", "Crème", "brûlée",
             "naïve", "東京", "emoji 🙂", "x" * 40]
    return [" ".join(rng.choice(words, size=int(rng.integers(1, 25)))) for _ in range(n)]


@pytest.fixture
def fresh_pools():
    yield
    tokenize_pool.close_pools()


def test_pool_equals_one_thread_ids_lengths_and_truncation(bare_tokenizer, fresh_pools, monkeypatch):
    monkeypatch.setattr(tokenize_pool, "MIN_SLICE", 100)   # several slices per chunk, so the join is exercised
    texts = _texts(1_037)
    for lower in (False, True):
        expected = tokenize_pool.tokenize(bare_tokenizer, texts, lower=lower, limit=12)
        pool = tokenize_pool.TokenizerPool(bare_tokenizer.to_str(), limit=12, lower=lower, workers=2)
        try:
            got = pool.submit(texts).result(timeout=120)
        finally:
            pool.close()
        assert np.array_equal(got.lengths, expected.lengths)
        assert np.array_equal(got.flat, expected.flat)
        assert got.truncated == expected.truncated > 0   # the 12-token limit cuts some texts: counted alike


def test_embed_vectors_do_not_depend_on_tokenizer_workers(tiny_bert_dir, fresh_pools):
    texts = _texts(300, seed=1)
    kw = dict(model=str(tiny_bert_dir), dtype="fp32", cache=False, progress=False, chunk_size=64)
    one_thread, r0 = embed(texts, tokenizer_workers=0, return_report=True, **kw)
    pooled, r2 = embed(texts, tokenizer_workers=2, return_report=True, **kw)
    assert np.array_equal(one_thread, pooled)
    assert (r0.n_tokens, r0.n_truncated) == (r2.n_tokens, r2.n_truncated)
    again = embed(texts, tokenizer_workers=2, **kw)   # the kept pool serves a second call
    assert np.array_equal(again, one_thread)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_tokenizer_workers_is_a_clear_error(tiny_bert_dir, bad):
    with pytest.raises(InputError, match="tokenizer_workers must be None or an integer ≥ 0"):
        embed(["a"], model=str(tiny_bert_dir), cache=False, progress=False, tokenizer_workers=bad)


def test_auto_workers_rule():
    assert tokenize_pool.auto_workers("cpu", cpus=64) == 0          # the model needs the cores on a CPU
    assert tokenize_pool.auto_workers("cuda", cpus=2) == 0          # no spare core
    assert tokenize_pool.auto_workers("cuda", cpus=6) == 4
    assert tokenize_pool.auto_workers("cuda", cpus=128) == tokenize_pool.MAX_AUTO_WORKERS


def test_a_failing_worker_surfaces_as_an_error(fresh_pools):
    with pytest.raises(BrokenProcessPool):   # the initializer fails: the pool breaks, the caller hears of it
        tokenize_pool.TokenizerPool("{not a tokenizer", limit=8, lower=False, workers=1)


def test_a_script_without_a_main_guard_is_not_rerun_in_the_workers(tmp_path, tiny_bert_dir):
    # Spawned workers import the parent's __main__ by path: an unguarded research script would run again
    # in every worker (and then fail to start a pool there). Its top-level code must run exactly once.
    log = tmp_path / "ran.txt"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from tokenizers import Tokenizer\n"
        "from clio_engine import tokenize_pool\n"
        f"open({str(log)!r}, 'a').write('ran\\n')\n"
        f"tok = Tokenizer.from_file({str(tiny_bert_dir / 'tokenizer.json')!r})\n"
        "pool = tokenize_pool.TokenizerPool(tok.to_str(), limit=16, lower=True, workers=2)\n"
        "print(len(pool.submit(['a text', 'another one'] * 3000).result().lengths))\n"
        "pool.close()\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["6000"]
    assert log.read_text() == "ran\n"
