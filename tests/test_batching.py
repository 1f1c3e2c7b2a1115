"""The token-budget batcher: every text exactly once, budget respected, order restorable."""
import numpy as np
import pytest

from clio_engine.embed.batching import TokenizedChunk, padded_width, plan_batches

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("seed", range(20))
def test_every_position_once_and_budget_respected(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    lengths = rng.integers(1, 300, size=n)
    budget = int(rng.choice([256, 1024, 4096, 16384]))
    max_rows = int(rng.integers(1, 600))
    batches = plan_batches(lengths, token_budget=budget, max_rows=max_rows)
    everything = np.concatenate(batches)
    assert np.array_equal(np.sort(everything), np.arange(n))  # each position exactly once
    for b in batches:
        assert 1 <= len(b) <= max_rows
        cost = padded_width(lengths[b].max()) * len(b)
        assert cost <= budget or len(b) == 1  # a lone over-budget text is the only exception


def test_batches_are_length_sorted_so_padding_is_small():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 200, size=5000)
    batches = plan_batches(lengths, token_budget=4096, max_rows=512)
    maxima = [lengths[b].max() for b in batches]
    assert maxima == sorted(maxima, reverse=True)  # longest batch first
    padded = sum(padded_width(lengths[b].max()) * len(b) for b in batches)
    assert padded <= 1.1 * lengths.sum()  # rounding widths up to a multiple of 8 costs a few percent


def test_inverse_permutation_restores_order():
    lengths = np.array([3, 9, 1, 9, 4, 2])
    batches = plan_batches(lengths, token_budget=40, max_rows=4)
    order = np.concatenate(batches)
    values = lengths[order]  # results come back in batch order
    restored = np.empty_like(values)
    restored[order] = values
    assert np.array_equal(restored, lengths)


def test_single_overlong_text_travels_alone():
    batches = plan_batches(np.array([5000, 3, 3]), token_budget=100, max_rows=10)
    assert [len(b) for b in batches] == [1, 2]


@pytest.mark.parametrize("budget,rows", [(0, 5), (10, 0), (-1, 1)])
def test_bad_budget_is_an_error(budget, rows):
    with pytest.raises(ValueError, match="positive"):
        plan_batches(np.array([1, 2]), token_budget=budget, max_rows=rows)


def test_pad_right_pads_with_mask():
    chunk = TokenizedChunk.from_lists([[101, 7, 102], [101, 102], [101, 5, 6, 102]])
    ids, mask = chunk.pad(np.array([2, 1]), pad_id=0)
    assert ids.tolist() == [[101, 5, 6, 102, 0, 0, 0, 0], [101, 102, 0, 0, 0, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_padding_equals_row_by_row(seed):
    rng = np.random.default_rng(seed)
    token_ids = [list(rng.integers(1, 30000, size=rng.integers(1, 70))) for _ in range(200)]
    chunk = TokenizedChunk.from_lists(token_ids)
    for rows in plan_batches(chunk.lengths, token_budget=512, max_rows=50):
        ids, mask = chunk.pad(rows, pad_id=-1)
        assert ids.shape[1] % 8 == 0 and ids.shape[1] >= max(len(token_ids[r]) for r in rows)
        for i, r in enumerate(rows):
            n = len(token_ids[r])
            assert ids[i, :n].tolist() == token_ids[r] and (ids[i, n:] == -1).all()
            assert mask[i].sum() == n and mask[i, :n].all()
