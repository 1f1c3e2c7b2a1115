"""`clio-engine run CONFIG --set compute.scheduler=dask` end to end on synthetic records with the tiny random
BERT: embedding and k-means on a real 2-process LocalCluster publish the same clusters, sizes and
assignments as the single-process run; the scheduler rekeys only what it can change; HDBSCAN is refused."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml

from clio_engine import load_config
from clio_engine.cli import EXIT_INPUT, EXIT_OK, main
from clio_engine.pipeline import plan

pytest.importorskip("distributed")
pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def config_file(tiny_bert_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "demo-dask.yaml"
    path.write_text(yaml.safe_dump({
        "input": {"synthetic_records": 600},
        "embed": {"model": str(tiny_bert_dir), "progress": False, "batch_tokens": 1024},
        "cluster": {"k": 12},
        "hierarchy": {"levels": 2, "top": 3},
        "privacy": {"min_users": 2, "min_records": 5},
        # Partitions of 128 records: the embedding is spread over 5 tasks on the 2 workers.
        "compute": {"n_workers": 2, "threads_per_worker": 1, "partition_rows": 128},
    }))
    return path


def _published(run_dir):
    a = pd.read_parquet(run_dir / "private" / "assignments.parquet")
    c = pd.read_parquet(run_dir / "clusters.parquet")
    return a, c


@pytest.mark.slow  # two runs, each starting a LocalCluster for its embed and cluster stages: ~40 s on 2 cores
def test_dask_run_publishes_what_the_local_run_publishes(config_file, tmp_path):
    from sklearn.metrics import adjusted_rand_score

    assert main(["run", str(config_file), "--out", str(tmp_path / "local")]) == EXIT_OK
    assert main(["run", str(config_file), "--out", str(tmp_path / "dask"), "--set", "compute.scheduler=dask"]) == EXIT_OK
    a_local, c_local = _published(tmp_path / "local")
    a_dask, c_dask = _published(tmp_path / "dask")

    stages = {name: json.loads((tmp_path / name / "manifest.json").read_text())["stages"] for name in ("local", "dask")}
    assert stages["dask"]["cluster"]["backend"] == "dask" and stages["local"]["cluster"]["backend"] != "dask"
    assert stages["dask"]["embed"]["n_texts"] == 600

    v_local = np.load(tmp_path / "local" / "private" / "embeddings.npy")
    v_dask = np.load(tmp_path / "dask" / "private" / "embeddings.npy")
    assert v_local.shape == v_dask.shape == (600, 32)
    assert np.sum(v_local * v_dask, axis=1).min() >= 0.99999, "other batches, the same vectors to rounding"
    assert not list((tmp_path / "dask" / "private").glob("embeddings.npy.parts*")), "dask work files left behind"

    levels = [c for c in a_local.columns if c.startswith("level_")]
    assert levels == ["level_0", "level_1"], list(a_local.columns)
    a_local, a_dask = a_local.set_index("id"), a_dask.set_index("id").loc[a_local["id"]]
    for column in levels:  # the node of each record at each level: the same partition, labels aside
        labels_local = a_local[column].fillna(-1).astype(str)
        labels_dask = a_dask[column].fillna(-1).astype(str)
        assert adjusted_rand_score(labels_local, labels_dask) == 1.0, column
    assert (a_local["published"].to_numpy() == a_dask["published"].to_numpy()).all()
    sizes = lambda c: sorted(c.loc[c["published"].astype(bool), "size"].dropna().astype(int))  # noqa: E731
    assert sizes(c_local) == sizes(c_dask) and len(sizes(c_local)) > 0


def test_the_scheduler_rekeys_embedding_and_below_and_the_partition_size_only_under_dask():
    local = plan(load_config(None), {"records": "fp"})
    dask = plan(load_config(None, {"compute.scheduler": "dask"}), {"records": "fp"})
    assert local["records"] == dask["records"] and local["facets"] == dask["facets"]
    assert local["embed"] != dask["embed"] and local["cluster"] != dask["cluster"]
    bigger = {"compute.partition_rows": 1024}
    assert plan(load_config(None, bigger), {"records": "fp"}) == local, "unused by the local scheduler"
    assert plan(load_config(None, {"compute.scheduler": "dask", **bigger}), {"records": "fp"})["embed"] != dask["embed"]
    # Where the cluster is and how big are not part of any key.
    elsewhere = {"compute.scheduler": "dask", "compute.address": "tcp://10.0.0.5:8786", "compute.n_workers": 8}
    assert plan(load_config(None, elsewhere), {"records": "fp"}) == dask


def test_hdbscan_on_dask_is_refused_in_one_line_before_any_heavy_stage(config_file, tmp_path, capsys):
    code = main(["run", str(config_file), "--out", str(tmp_path / "run"), "--set", "compute.scheduler=dask",
                 "--set", "cluster.method=hdbscan"])
    assert code == EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "hdbscan has no Dask path" in err[0]
    assert not (tmp_path / "run" / "private" / "embeddings.npy").exists()


def test_a_local_cluster_leaves_the_thread_settings_of_this_process_as_they_were(monkeypatch):
    """distributed's Nanny sets OMP_NUM_THREADS=1 (and MKL, OpenBLAS) in the parent before spawning a worker;
    client_for gives the old values back, so later subprocesses of the run keep their threads."""
    from clio_engine.config import load_config
    from clio_engine.scale.dask_cluster import client_for

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    compute = load_config(None, {"compute.scheduler": "dask", "compute.n_workers": 1}).compute
    with client_for(compute) as client:
        assert client.submit(lambda: __import__("os").environ.get("OMP_NUM_THREADS")).result() == "1"  # workers: 1
    assert [name for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS") if name in os.environ] == []
