"""clio_engine.KMeans against scikit-learn: same labels from the same initial centers, inertia and
V-measure on real embeddings, determinism, weights, streaming, and bad input."""
import logging

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, v_measure_score

from clio_engine.cluster import KMeans
from clio_engine.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def banking_embeddings(data_dir):
    import pandas as pd

    from clio_engine.embed import embed

    frame = pd.read_csv(data_dir / "banking77.csv.gz", keep_default_na=False).sample(4000, random_state=0)
    vectors = embed(frame["text"].tolist(), dtype="auto", cache=True, progress=False)
    return vectors, frame["label"].to_numpy()


def _blobs(n=3000, d=16, k=12, seed=0):
    x, y = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=2.0, random_state=seed)
    return x.astype(np.float32), y


@pytest.mark.unit
@pytest.mark.parametrize("max_iter", [1, 5, 30])
def test_same_initial_centers_same_labels_as_sklearn_lloyd_on_blobs(max_iter):
    x, _ = _blobs()
    init = x[np.random.default_rng(1).choice(len(x), 12, replace=False)]
    ours = KMeans(12, init=init, max_iter=max_iter, tol=0.0, backend="cpu").fit(x)
    ref = SkKMeans(12, init=init, n_init=1, max_iter=max_iter, tol=0.0, algorithm="lloyd").fit(x)
    assert np.array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-4, atol=1e-4)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)


@pytest.mark.quality
@pytest.mark.parametrize("k,max_iter", [(77, 10), (200, 25)])
def test_same_initial_centers_same_labels_as_sklearn_on_real_embeddings(banking_embeddings, k, max_iter):
    x, _ = banking_embeddings
    init = x[np.random.default_rng(k).choice(len(x), k, replace=False)]
    ours = KMeans(k, init=init, max_iter=max_iter, tol=0.0, backend="cpu").fit(x)
    ref = SkKMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0.0, algorithm="lloyd").fit(x)
    mismatched = int((ours.labels_ != ref.labels_).sum())
    assert mismatched == 0, f"{mismatched} of {len(x)} labels differ from sklearn's after {max_iter} iterations"
    assert ours.n_iter_ == ref.n_iter_


@pytest.mark.quality
def test_kmeanspp_inertia_within_one_percent_of_sklearn_median(banking_embeddings):
    x, _ = banking_embeddings
    ours = [KMeans(77, random_state=s, backend="cpu").fit(x).inertia_ for s in range(5)]
    ref = [SkKMeans(77, n_init=1, random_state=s).fit(x).inertia_ for s in range(5)]
    assert np.median(ours) <= 1.01 * np.median(ref), (ours, ref)


@pytest.mark.unit
def test_same_seed_same_result_and_different_seed_differs():
    x, _ = _blobs(k=20)
    a = KMeans(20, random_state=3, backend="cpu").fit(x)
    b = KMeans(20, random_state=3, backend="cpu").fit(x)
    c = KMeans(20, random_state=4, init="random", backend="cpu").fit(x)
    assert np.array_equal(a.labels_, b.labels_) and np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


@pytest.mark.unit
@pytest.mark.parametrize("init", ["k-means++", "k-means||"])
def test_seeding_inits_recover_well_separated_blobs(init):
    x, y = make_blobs(n_samples=4000, n_features=8, centers=10, cluster_std=0.5, random_state=2)
    model = KMeans(10, init=init, n_init=3, random_state=0, backend="cpu").fit(x.astype(np.float32))
    assert adjusted_rand_score(y, model.labels_) >= 0.99


@pytest.mark.unit
def test_random_init_is_as_good_as_sklearns_random_init():
    # Random init gets stuck in local optima by nature; compare with sklearn's own random init.
    x, _ = make_blobs(n_samples=4000, n_features=8, centers=10, cluster_std=0.5, random_state=2)
    x = x.astype(np.float32)
    ours = [KMeans(10, init="random", n_init=3, random_state=s, backend="cpu").fit(x).inertia_ for s in range(5)]
    ref = [SkKMeans(10, init="random", n_init=3, random_state=s).fit(x).inertia_ for s in range(5)]
    assert np.median(ours) <= 1.05 * np.median(ref), (ours, ref)


@pytest.mark.unit
def test_integer_weights_equal_duplicated_rows():
    x, _ = _blobs(n=600, k=6)
    w = np.random.default_rng(0).integers(1, 4, size=len(x))
    init = x[:6]
    weighted = KMeans(6, init=init, max_iter=20, tol=0, backend="cpu").fit(x, sample_weight=w)
    repeated = KMeans(6, init=init, max_iter=20, tol=0, backend="cpu").fit(np.repeat(x, w, axis=0))
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert weighted.inertia_ == pytest.approx(repeated.inertia_, rel=1e-5)
    assert np.array_equal(np.repeat(weighted.labels_, w), repeated.labels_)


@pytest.mark.unit
def test_cosine_metric_is_spherical_kmeans():
    x, _ = _blobs(n=1500, d=32, k=8)
    model = KMeans(8, metric="cosine", random_state=0, backend="cpu").fit(x)
    centers = model.cluster_centers_
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-5)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    assert np.array_equal(model.labels_, (unit @ centers.T).argmax(1))
    assert np.array_equal(model.predict(x * 7.0), model.labels_)  # scale-free


@pytest.mark.unit
def test_memmap_streamed_in_small_chunks_equals_in_memory(tmp_path, monkeypatch):
    x, _ = _blobs(n=2500, k=10)
    path = tmp_path / "x.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=x.shape)
    mm[:] = x
    mm.flush()
    in_memory = KMeans(10, random_state=1, backend="cpu").fit(x)
    import clio_engine.cluster.rows as rows

    monkeypatch.setattr(rows, "CHUNK_ROWS", 333)  # 8 chunks, the last one partial
    assert len(list(rows.Rows(np.load(path, mmap_mode="r"), torch.device("cpu")).chunks())) == 8
    streamed = KMeans(10, random_state=1, backend="cpu").fit(np.load(path, mmap_mode="r"))
    assert np.array_equal(in_memory.labels_, streamed.labels_)
    np.testing.assert_allclose(in_memory.cluster_centers_, streamed.cluster_centers_, rtol=1e-5, atol=1e-5)


@pytest.mark.unit
def test_empty_clusters_are_reseeded_with_farthest_points():
    x, _ = _blobs(n=1000, k=5)
    init = np.vstack([x[:4], np.full((1, x.shape[1]), 1e4, dtype=np.float32)])  # a center nobody is near
    model = KMeans(5, init=init, max_iter=50, backend="cpu").fit(x)
    assert len(np.unique(model.labels_)) == 5


@pytest.mark.unit
def test_duplicate_and_identical_points(caplog):
    x, _ = _blobs(n=200, k=3)
    doubled = np.vstack([x, x])
    model = KMeans(3, random_state=0, backend="cpu").fit(doubled)
    assert np.array_equal(model.labels_[:200], model.labels_[200:])  # a point and its copy agree
    same = np.ones((50, 4), dtype=np.float32)
    with caplog.at_level(logging.WARNING, logger="clio_engine.cluster"):
        flat = KMeans(3, random_state=0, backend="cpu").fit(same)
    assert flat.inertia_ == 0.0 and len(np.unique(flat.labels_)) == 1
    assert "fewer than n_clusters=3" in caplog.text


@pytest.mark.unit
@pytest.mark.parametrize("make,message", [
    (lambda x: np.vstack([x, [[np.nan] * x.shape[1]]]), "row 100 contains NaN"),
    (lambda x: np.vstack([x, [[np.inf] * x.shape[1]]]), "row 100 contains NaN or inf"),
    (lambda x: x[:0], "at least one row"),
    (lambda x: x[:, 0], "must be a 2-D array"),
    (lambda x: x[:5], "n_clusters=8 is larger than the number of samples"),
    (lambda x: np.array([["a", "b"]] * 20), "must be a numeric array"),
])
def test_bad_input_is_a_clear_error(make, message):
    x, _ = _blobs(n=100, k=3)
    with pytest.raises(InputError, match=message):
        KMeans(8, backend="cpu").fit(make(x))


@pytest.mark.unit
def test_bad_parameters_and_predict_dimension_mismatch():
    x, _ = _blobs(n=100, k=3)
    with pytest.raises(ConfigError, match="init must be one of"):
        KMeans(3, init="kmeans++").fit(x)
    with pytest.raises(ConfigError, match="metric must be one of"):
        KMeans(3, metric="manhattan").fit(x)
    with pytest.raises(InputError, match="init array has shape"):
        KMeans(3, init=x[:2]).fit(x)
    with pytest.raises(ConfigError, match="backend 'cuml' was requested but cuML is not installed"):
        KMeans(3, backend="cuml").fit(x)
    model = KMeans(3, backend="cpu").fit(x)
    with pytest.raises(InputError, match="X has 15 features, but KMeans is expecting 16 features as input"):
        model.predict(x[:, :15])
    with pytest.raises(InputError, match="sample_weight must be finite and non-negative"):
        KMeans(3).fit(x, sample_weight=-np.ones(len(x)))


@pytest.mark.unit
def test_sklearn_conventions_get_params_clone_transform_score():
    model = KMeans(5, init="random", random_state=7)
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    x, _ = _blobs(n=500, k=5)
    twin.fit(x)
    assert twin.get_params() == model.get_params()  # fit never overwrites a parameter
    dist = twin.transform(x[:10])
    assert dist.shape == (10, 5) and np.array_equal(dist.argmin(1), twin.predict(x[:10]))
    assert twin.score(x) == pytest.approx(-twin.inertia_, rel=1e-5)
    assert np.array_equal(twin.fit_predict(x), twin.labels_)


@pytest.mark.quality
@pytest.mark.slow
@pytest.mark.parametrize("file,column", [("twenty_newsgroups.csv.gz", "text"), ("banking77.csv.gz", "text")])
def test_v_measure_within_one_point_of_sklearn(data_dir, file, column):
    import pandas as pd

    from clio_engine.embed import embed

    frame = pd.read_csv(data_dir / file, keep_default_na=False)
    frame = frame[frame[column].str.strip() != ""]
    x = embed(frame[column].tolist(), dtype="auto", progress=False)
    y = frame["label"].to_numpy()
    k = len(np.unique(y))
    ours = np.mean([v_measure_score(y, KMeans(k, random_state=s, backend="cpu").fit(x).labels_) for s in range(3)])
    ref = np.mean([v_measure_score(y, SkKMeans(k, n_init=1, random_state=s).fit(x).labels_) for s in range(3)])
    print(f"{file}: V-measure ours {100 * ours:.2f}, sklearn {100 * ref:.2f}")
    assert abs(ours - ref) <= 0.01, (ours, ref)


@pytest.mark.parametrize("steps, tol, expected", [
    ([(5.0, 10), (4.0, 3), (3.0, 0), (2.0, 7)], 0.0, (True, 3)),     # no label changed: converged strictly
    ([(5.0, 10), (0.5, 3), (0.1, 1)], 1.0, (False, 2)),              # shift ≤ tol: one more assignment due
    ([(5.0, 10), (4.0, 3), (3.0, 2)], 1.0, (False, 3)),              # ran out of iterations
])
def test_every_lloyd_loop_shares_sklearns_stop_rule(steps, tol, expected):
    from clio_engine.cluster.lloyd import iterate

    calls = iter(steps)
    assert iterate(lambda: next(calls), max_iter=3, tol=tol) == expected
