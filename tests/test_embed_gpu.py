"""The same embedding code on CUDA: agreement with sentence-transformers there, bounded memory."""
import numpy as np
import pytest
import torch

from clio_engine.embed import embed, resolve_model

pytestmark = pytest.mark.gpu


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ("refund card transfer python error fixture deploy poem travel visa recipe budget translate "
             "essay summary workout sleep garden kubernetes invoice").split()
    return [f"{i} " + " ".join(rng.choice(words, size=rng.integers(3, 60))) for i in range(n)]


@pytest.fixture(scope="module")
def model_path():
    import os

    return os.environ.get("CLIO_TEST_MODEL") or str(resolve_model("default").path)


def test_cuda_matches_sentence_transformers(model_path):
    from sentence_transformers import SentenceTransformer

    texts = _texts(3000)
    # .float(): transformers ≥ 5 keeps a half checkpoint (the carried copy) in half; the reference is fp32.
    ref = SentenceTransformer(model_path, device="cuda").float().encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    fp32 = embed(texts, model=model_path, device="cuda", dtype="fp32", cache=False, progress=False)
    auto, report = embed(texts, model=model_path, device="cuda", cache=False, progress=False, return_report=True)
    cos32, cos_auto = (fp32 * ref).sum(1), (auto * ref).sum(1)
    assert cos32.min() >= 0.9999, cos32.min()
    assert report.dtype in ("bf16", "fp16")
    assert cos_auto.mean() >= 0.999 and cos_auto.min() >= 0.99, (cos_auto.mean(), cos_auto.min())


def test_gpu_memory_does_not_grow_with_n(model_path):
    peaks = []
    for n in (5_000, 40_000):
        torch.cuda.reset_peak_memory_stats()
        embed(_texts(n, seed=n), model=model_path, device="cuda", cache=False, progress=False)
        peaks.append(torch.cuda.max_memory_allocated())
    assert peaks[1] <= peaks[0] * 1.2 + (64 << 20), f"peak GPU memory grew with N: {peaks}"
