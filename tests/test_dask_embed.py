"""`dask_embed` on a real 2-process LocalCluster with the tiny random BERT: a worker SIGKILLed in the middle
of a partition is replaced, the task reruns and the vectors equal an uninterrupted run's bit for bit; a run
that fails part-way resumes from its recorded partitions; both agree with single-process `embed()`."""
from __future__ import annotations

import os

import numpy as np
import pytest

from clio_engine.datasets import generate_conversations
from clio_engine.embed import embed
from clio_engine.errors import InputError, OutputError
from clio_engine.faults import FAULT_ENV
from clio_engine.scale.dask_cluster import local_cluster
from clio_engine.scale.dask_embed import dask_embed

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.unit

PARTITION = 64


@pytest.fixture(scope="module")
def texts() -> list[str]:
    texts = list(dict.fromkeys(generate_conversations(320, seed=5)["text"]))[:300]
    return texts + texts[:40]  # duplicates: embedded once, gathered back into input order


@pytest.fixture(scope="module")
def client():
    with local_cluster(n_workers=2) as cluster, distributed.Client(cluster) as c:  # TLS, as a run starts it
        yield c


@pytest.fixture(scope="module")
def settings(tiny_bert_dir, tmp_path_factory) -> dict:
    # Small chunks and batches, so a partition holds several batches and a 2nd chunk.
    return {"model": str(tiny_bert_dir), "cache_dir": str(tmp_path_factory.mktemp("cache")), "device": "cpu",
            "batch_tokens": 512, "chunk_size": 40, "progress": False}


@pytest.fixture(scope="module")
def reference(client, texts, settings, tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("ref") / "vectors.npy"
    report = dask_embed(client, texts, out, partition_rows=PARTITION, **settings)
    assert (report.n_texts, report.n_unique, report.chunks, report.chunks_reused) == (340, len(set(texts)), 5, 0)
    assert sorted(p.name for p in out.parent.iterdir()) == ["vectors.npy"], "work files must be gone"
    return np.load(out)


def _on_workers(client, name: str, value: str | None) -> None:
    def setenv():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    client.run(setenv)


def test_uninterrupted_run_matches_single_process_embed(reference, texts, settings):
    single = embed(texts, cache=False, **settings)
    assert reference.shape == single.shape == (340, 32)
    cosine = np.sum(reference * single, axis=1) / np.linalg.norm(reference, axis=1) / np.linalg.norm(single, axis=1)
    assert cosine.min() >= 0.99999
    assert np.array_equal(reference[300:], reference[:40]), "a duplicate text gets its first copy's vector"


def test_a_worker_killed_mid_partition_is_replaced_and_the_vectors_equal_an_uninterrupted_run(
        client, texts, settings, reference, tmp_path):
    before = set(client.scheduler_info()["workers"])
    _on_workers(client, FAULT_ENV, "embed:partition:2")
    try:
        report = dask_embed(client, texts, tmp_path / "vectors.npy", partition_rows=PARTITION, **settings)
    finally:
        _on_workers(client, FAULT_ENV, None)
    client.wait_for_workers(2, timeout=60)
    after = set(client.scheduler_info()["workers"])
    assert len(before - after) == 1, "the fault must have killed exactly one worker (the nanny starts a new one)"
    assert report.chunks == 5
    assert np.array_equal(np.load(tmp_path / "vectors.npy"), reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors.npy"]


@pytest.mark.slow  # a second cluster: ~20 s on 2 idle cores
def test_a_run_that_fails_part_way_resumes_from_its_recorded_partitions(texts, settings, reference, tmp_path):
    import dask

    # One worker, no retries of a task whose worker died: the kill at partition 3 fails the run, after
    # partitions 0-2 were recorded; the rerun (the once-only marker lets it through) redoes only the rest.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            local_cluster(n_workers=1) as cluster, \
            distributed.Client(cluster) as c:
        _on_workers(c, FAULT_ENV, "embed:partition:3")
        out = tmp_path / "vectors.npy"
        with pytest.raises(OutputError, match=r"embedding partition [34] "):
            dask_embed(c, texts, out, partition_rows=PARTITION, **settings)
        assert not out.exists() and (tmp_path / "vectors.npy.parts.json").exists()
        c.wait_for_workers(1, timeout=60)
        report = dask_embed(c, texts, out, partition_rows=PARTITION, **settings)
    assert report.chunks == 5 and report.chunks_reused == 3  # partitions 0-2
    assert np.array_equal(np.load(out), reference)


def test_bad_arguments_are_one_line_errors(client, texts, settings, tmp_path):
    with pytest.raises(InputError, match="partition_rows"):
        dask_embed(client, texts, tmp_path / "v.npy", partition_rows=0, **settings)
    with pytest.raises(InputError, match="store_dir"):
        dask_embed(client, texts, tmp_path / "v.npy", partition_rows=10, store_dir=tmp_path, **settings)
    with pytest.raises(InputError, match="index 1 is empty"):
        dask_embed(client, ["a text", " "], tmp_path / "v.npy", partition_rows=10, **settings)
