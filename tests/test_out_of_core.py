"""Out-of-core reads (issue 13 item 2): streaming a `.npy` memmap through `Rows` and `segment_sum` keeps the
process's RSS at about one chunk, and the results equal the in-memory computation.

The RSS check runs in a subprocess that reads its own peak RSS (VmHWM, reset before each pass through
/proc/self/clear_refs), with a control pass that copies the same slices the way the code did before
(`np.array(memmap[a:b])`): the control must grow by about the file size, so the measurement can see a
regression. No timing is asserted.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from clio_engine.cluster.rows import Rows
from clio_engine.segments import read_rows, release, segment_sum, take_rows

pytestmark = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")

N, D, K = 200_000, 384, 50  # 200,000 × 384 float32 = 307 MB
MiB = 1 << 20

CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np, torch
    from clio_engine.cluster.rows import Rows
    from clio_engine.segments import segment_sum

    path, labels_path, index_path, out_path = sys.argv[1:]
    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    def reset():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    m = np.load(path, mmap_mode="r")
    labels, index = np.load(labels_path), np.load(index_path)
    rows = Rows(m, torch.device("cpu"), chunk_rows=8192)
    growth = {}
    for _, chunk in Rows(m[:3 * 8192], torch.device("cpu"), chunk_rows=8192).chunks():  # allocator warm-up
        chunk.double().sum(0)
    segment_sum(m[:3 * 8192], labels[:3 * 8192], int(labels.max()) + 1, chunk=8192)

    reset(); base = hwm()
    total = torch.zeros(m.shape[1], dtype=torch.float64)
    for _, chunk in rows.chunks():
        total += chunk.double().sum(0)
    growth["chunks"] = hwm() - base

    reset(); base = hwm()
    sums = segment_sum(m, labels, int(labels.max()) + 1, chunk=8192)
    growth["segment_sum"] = hwm() - base

    reset(); base = hwm()
    taken = rows.take(index)
    growth["take"] = hwm() - base

    reset(); base = hwm()
    control = np.zeros(m.shape[1])
    for s in range(0, len(m), 8192):
        control += np.array(m[s:s + 8192], dtype=np.float32).sum(0)
    growth["control"] = hwm() - base

    np.savez(out_path, total=total.numpy(), sums=sums, taken=taken.numpy())
    print(json.dumps(growth))
""")


@pytest.fixture(scope="module")
def big_npy(tmp_path_factory):
    """A 307 MB .npy written chunk by chunk (the test process never holds it), its labels and a sample index."""
    folder = tmp_path_factory.mktemp("ooc")
    path = folder / "x.npy"
    m = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(N, D))
    rng = np.random.default_rng(0)
    for s in range(0, N, 16_384):
        m[s:s + 16_384] = rng.standard_normal((min(16_384, N - s), D), dtype=np.float32)
        release(m[s:s + 16_384])
    m.flush()
    del m
    labels = rng.integers(-1, K, N)  # −1: skipped by segment_sum
    index = rng.choice(N, 20_000, replace=False)  # unsorted: take restores the caller's order
    np.save(folder / "labels.npy", labels)
    np.save(folder / "index.npy", index)
    return path, folder / "labels.npy", folder / "index.npy"


def test_streaming_a_memmap_keeps_rss_flat_and_equals_in_memory(big_npy, tmp_path):
    path, labels_path, index_path = big_npy
    out = tmp_path / "child.npz"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(labels_path), str(index_path), str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    growth = json.loads(proc.stdout.strip().splitlines()[-1])
    size = path.stat().st_size
    print({k: round(v / MiB, 1) for k, v in growth.items()}, "MiB; file", round(size / MiB, 1), "MiB")
    # The control proves the measurement sees mapped pages: the old way ends with the whole file resident.
    assert growth["control"] > 0.8 * size
    # O(chunk) working memory (8,192 rows: 12 MiB float32, 24 MiB float64) plus, for take, its output
    # [20,000, D] twice (the sorted gather and the caller's order): about 50 MiB each, whatever the file size.
    output = 20_000 * D * 4
    bounds = {"chunks": size / 4, "segment_sum": size / 4, "take": size / 4 + 2 * output}
    for name, bound in bounds.items():
        assert growth[name] < bound, (name, {k: round(v / MiB, 1) for k, v in growth.items()})

    x = np.load(path)  # the in-memory reference
    labels, index = np.load(labels_path), np.load(index_path)
    got = np.load(out)
    ref_total = torch.zeros(D, dtype=torch.float64)
    for _, chunk in Rows(x, torch.device("cpu"), chunk_rows=8192).chunks():
        ref_total += chunk.double().sum(0)
    np.testing.assert_array_equal(got["total"], ref_total.numpy())
    np.testing.assert_array_equal(got["sums"], segment_sum(x, labels, K, chunk=8192))
    reference = np.zeros((K, D))
    np.add.at(reference, labels[labels >= 0], x[labels >= 0].astype(np.float64))
    np.testing.assert_allclose(got["sums"], reference, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(got["taken"], x[index])


def test_read_and_take_rows_equal_slicing(tmp_path):
    x = np.random.default_rng(1).standard_normal((30_000, 5)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    m = np.load(tmp_path / "a.npy", mmap_mode="r")
    np.testing.assert_array_equal(read_rows(m, 7, 20_011), x[7:20_011])
    assert read_rows(m, 0, 3, np.float64).dtype == np.float64
    index = np.sort(np.random.default_rng(2).choice(30_000, 9_000, replace=False))
    np.testing.assert_array_equal(take_rows(m, index), x[index])
    np.testing.assert_array_equal(take_rows(x, index), x[index])  # a plain array: nothing to release


def test_release_keeps_writes_and_leaves_private_mappings_alone(tmp_path):
    path = tmp_path / "w.npy"
    m = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(4096, 8))
    m[:] = 3.0
    release(m[:])  # dirty shared pages: unmapped here, still written back
    m.flush()
    del m
    assert (np.load(path) == 3.0).all()
    c = np.load(path, mmap_mode="c")  # copy-on-write: dropping its pages would lose the change
    c[10] = 7.0
    release(c[:])
    assert (read_rows(c, 10, 11) == 7.0).all()


@pytest.mark.parametrize("open_node_rows", [1 << 20, 50])  # 50: an open node is compacted many times
def test_streamed_terms_equal_the_in_memory_doc_term_path(monkeypatch, open_node_rows):
    import clio_engine.naming.keywords as keywords
    from clio_engine.naming.keywords import corpus_idf, document_terms, streamed_terms, terms_from_documents

    monkeypatch.setattr(keywords, "OPEN_NODE_ROWS", open_node_rows)

    rng = np.random.default_rng(3)
    words = [f"w{i}a" for i in range(40)] + ["card", "payment", "the", "refund", "loan"]
    n = 3_000
    base = rng.integers(-1, 30, n)  # −1: noise, outside every node
    parent = rng.integers(0, 6, 30)
    top = np.array([0, 0, 1, 1, 2, 2])
    levels = [base, np.where(base >= 0, parent[np.maximum(base, 0)], -1)]
    levels.append(np.where(levels[1] >= 0, top[np.maximum(levels[1], 0)], -1))
    texts = [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(n)]
    users = rng.integers(0, 400, n)
    sizes = [30, 6, 3]
    seen = []

    def text_at(index):
        seen.append(len(index))
        return [texts[i] for i in index]

    got, idf = streamed_terms(text_at, levels, users, sizes, min_df=3, chunk=256)
    assert max(seen) <= 256 and sum(seen) == n  # one pass, a chunk at a time
    doc_terms, vocab = document_terms(texts, min_df=3)
    np.testing.assert_array_equal(got[0].vocab, vocab)
    np.testing.assert_allclose(idf, corpus_idf(doc_terms))
    for level, lab in enumerate(levels):
        want = terms_from_documents(doc_terms, vocab, lab, users, sizes[level])
        np.testing.assert_array_equal(got[level].counts.toarray(), want.counts.toarray())
        np.testing.assert_array_equal(got[level].users.toarray(), want.users.toarray())
