"""clio_engine.embed on tiny random BERTs: agreement with sentence-transformers, batching invariance,
dedupe, truncation, bad input, caching."""
import numpy as np
import pytest

from clio_engine.embed import embed
from clio_engine.errors import InputError, ModelError
from tests.tiny_models import build_tiny_sentence_model

pytestmark = pytest.mark.unit

TEXTS = [
    "The user's overall request is to debug a failing pytest fixture.",
    "Write a haiku about autumn leaves",
    "how do I reset my card PIN?",
    "Translate 'good morning' into Japanese and explain the politeness level of each option.",
    "sql join",
    "Explain the difference between a list and a tuple in Python, with examples of when each is preferable.",
] * 3 + ["a b c d e f g"]


def _st_encode(path, texts):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(path), device="cpu")
    return model.encode(texts, normalize_embeddings=False, convert_to_numpy=True, batch_size=4)


@pytest.mark.parametrize("pooling,normalize", [("mean", True), ("cls", False), ("max", True), ("mean_sqrt_len", False)])
def test_equals_sentence_transformers_for_each_pooling(tmp_path, pooling, normalize):
    path = build_tiny_sentence_model(tmp_path / pooling, pooling=pooling, normalize=normalize)
    ours = embed(TEXTS, model=str(path), device="cpu", dtype="fp32", cache=False, progress=False)
    ref = _st_encode(path, TEXTS)
    assert ours.shape == ref.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
    norms = np.linalg.norm(ours, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == normalize


def test_result_does_not_depend_on_batching(tiny_bert_dir):
    rng = np.random.default_rng(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 40))) for _ in range(300)]
    one = embed(texts, model=str(tiny_bert_dir), dtype="fp32", cache=False, progress=False, batch_tokens=64, max_batch_rows=3)
    big = embed(texts, model=str(tiny_bert_dir), dtype="fp32", cache=False, progress=False, batch_tokens=100_000, chunk_size=7)
    single = np.stack([embed([t], model=str(tiny_bert_dir), dtype="fp32", cache=False, progress=False)[0] for t in texts[:20]])
    np.testing.assert_allclose(one, big, atol=2e-6)
    np.testing.assert_allclose(one[:20], single, atol=2e-6)  # original order restored


def test_identical_texts_embedded_once(tiny_bert_dir):
    vecs, report = embed(TEXTS, model=str(tiny_bert_dir), cache=False, progress=False, return_report=True)
    assert report.n_texts == len(TEXTS) and report.n_unique == 7
    assert np.array_equal(vecs[0], vecs[6]) and np.array_equal(vecs[0], vecs[12])
    _, no_dedupe = embed(TEXTS, model=str(tiny_bert_dir), cache=False, progress=False, dedupe=False, return_report=True)
    assert no_dedupe.n_unique == len(TEXTS)


def test_overlong_texts_are_truncated_and_counted(tiny_bert_dir):
    huge = "word " * 20_000  # 100k characters
    vecs, report = embed(["short text", huge, "another short one"], model=str(tiny_bert_dir),
                         cache=False, progress=False, return_report=True)
    assert report.n_truncated == 1 and report.max_length == 64
    assert np.isfinite(vecs).all()
    _, shorter = embed(["one two three four five six seven eight"], model=str(tiny_bert_dir), max_length=4,
                       cache=False, progress=False, return_report=True)
    assert shorter.n_truncated == 1 and shorter.n_tokens == 4


@pytest.mark.parametrize("bad,message", [
    ([None, "ok"], "text at index 0 is NoneType"),
    (["ok", ""], "text at index 1 is empty"),
    (["ok", "   "], "text at index 1 is empty"),
    (["ok", 42], "text at index 1 is int"),
    ("just one string", "not a single string"),
])
def test_bad_texts_are_clear_errors(tiny_bert_dir, bad, message):
    with pytest.raises(InputError, match=message):
        embed(bad, model=str(tiny_bert_dir), cache=False, progress=False)


def test_bad_settings_are_clear_errors(tiny_bert_dir):
    with pytest.raises(InputError, match="exceeds the model's limit of 64"):
        embed(["x"], model=str(tiny_bert_dir), max_length=1000, cache=False, progress=False)
    with pytest.raises(InputError, match="chunk_size must be a positive integer"):
        embed(["x"], model=str(tiny_bert_dir), chunk_size=0, cache=False, progress=False)
    with pytest.raises(ModelError, match="is not a model directory"):
        embed(["x"], model="./no/such/model", cache=False, progress=False)


def test_cache_reuses_finished_chunks_and_out_writes_npy(tiny_bert_dir, tmp_path):
    kwargs = dict(model=str(tiny_bert_dir), cache_dir=tmp_path / "cache", chunk_size=4, progress=False, return_report=True)
    first, r1 = embed(TEXTS, **kwargs)
    second, r2 = embed(TEXTS, out=tmp_path / "out" / "vecs.npy", **kwargs)
    assert r1.chunks_reused == 0 and r2.chunks_reused == r2.chunks == 2
    # a cache read is said as one, not as the model's speed (an analyst's review read "925 unique texts/s")
    assert "unique texts/s" in r1.summary() and "from the cache" not in r1.summary()
    assert "from the cache" in r2.summary() and "texts/s" not in r2.summary()
    assert np.array_equal(first, second)
    assert np.array_equal(np.load(tmp_path / "out" / "vecs.npy"), first)
    _, r3 = embed(TEXTS[:-1], **kwargs)  # different texts → different cache entry
    assert r3.chunks_reused == 0 and r3.store != r1.store


def test_empty_input_gives_empty_matrix(tiny_bert_dir):
    vecs = embed([], model=str(tiny_bert_dir), cache=False, progress=False)
    assert vecs.shape == (0, 32) and vecs.dtype == np.float32
