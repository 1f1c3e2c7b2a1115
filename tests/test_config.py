"""clio_engine.config: presets, overrides, and one-line errors that name the offending key."""
from __future__ import annotations

import typing

import pytest
import yaml
from pydantic import BaseModel

from clio_engine.config import ClioConfig, load_config, preset_names, preset_text
from clio_engine.errors import ConfigError

pytestmark = pytest.mark.unit


def error_of(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_presets_exist_and_validate():
    assert {"default", "demo", "clio", "gpu"} <= set(preset_names())
    for name in preset_names():
        assert isinstance(load_config(name), ClioConfig)
        assert load_config(name) == load_config(yaml.safe_load(preset_text(name)) or {})


def test_default_yaml_is_exactly_the_defaults():
    assert load_config("default") == ClioConfig() == load_config(None)
    # and it writes every key out, so it documents the whole schema
    written = yaml.safe_load(preset_text("default"))
    assert written == ClioConfig().model_dump(mode="json")


def test_preset_contents():
    demo, clio, gpu = load_config("demo"), load_config("clio"), load_config("gpu")
    assert demo.input.synthetic_records == 20000 and demo.embed.model == "default"
    assert clio.embed.model == "sentence-transformers/all-mpnet-base-v2"
    assert (clio.privacy.min_users, clio.privacy.min_records, clio.hierarchy.levels) == (250, 500, 3)
    assert (gpu.embed.device, gpu.embed.dtype, gpu.embed.batch_tokens, gpu.embed.chunk_size) == ("cuda", "bf16", 65536, 65536)
    assert gpu.cluster.backend == "auto"


def test_defaults():
    c = ClioConfig()
    assert (c.privacy.min_users, c.privacy.min_records, c.privacy.examples) == (5, 15, "scrubbed")
    assert c.embed.model_dump() == {
        "model": "default", "device": "auto", "dtype": "auto", "batch_tokens": None, "max_batch_rows": None,
        "max_length": None, "chunk_size": None, "cache_dir": None, "dedupe": True, "progress": True, "tokenizer_workers": None,
    }


def test_unknown_key_names_the_dotted_path_and_suggests():
    assert error_of({"embed": {"batch_token": 5}}) == "unknown config key 'embed.batch_token' (did you mean 'batch_tokens'?)"
    assert error_of({"privacy": {"min_user": 5}}) == "unknown config key 'privacy.min_user' (did you mean 'min_users'?)"
    assert error_of({"verbosity": 1}) == "unknown config key 'verbosity'"


def test_key_in_the_wrong_section_points_to_the_right_one():
    assert error_of({"cluster": {"batch_tokens": 1}}) == (
        "unknown config key 'cluster.batch_tokens' (did you mean 'embed.batch_tokens'?)"
    )


def test_unknown_key_in_a_file_names_the_file_and_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("embed:\n  model: default\n  batch_token: 100\n")
    msg = error_of(path)
    assert str(path) in msg and "'embed.batch_token'" in msg and "'batch_tokens'" in msg


def test_wrong_types_name_key_and_expected_type():
    assert error_of({"embed": {"batch_tokens": "many"}}) == "config key 'embed.batch_tokens' expects int or null, got 'many' (str)"
    assert error_of({"embed": {"device": "gpu"}}) == (
        "config key 'embed.device' expects one of 'auto', 'cpu', 'cuda', got 'gpu' (str)"
    )
    assert error_of({"privacy": {"epsilon": "x"}}) == "config key 'privacy.epsilon' expects float or null, got 'x' (str)"
    assert error_of({"embed": 5}) == "config key 'embed' expects a mapping, got 5 (int)"
    assert "'input.facet_columns[0]'" in error_of({"input": {"facet_columns": [1]}})


def test_bounds():
    assert error_of({"embed": {"batch_tokens": 0}}) == "config key 'embed.batch_tokens' must be greater than 0, got 0"
    assert "'hierarchy.levels' must be greater than or equal to 1" in error_of({"hierarchy": {"levels": 0}})
    assert "'privacy.epsilon'" in error_of({"privacy": {"epsilon": -1.0}})


def test_several_errors_on_one_line():
    msg = error_of({"embed": {"dtype": "fp8"}, "seed": "x"})
    assert "'embed.dtype'" in msg and "'seed'" in msg


def test_overrides_apply_before_validation():
    c = load_config("gpu", {"embed.dtype": "fp32", "cluster.k": 50, "privacy.min_users": 10})
    assert (c.embed.dtype, c.cluster.k, c.privacy.min_users, c.embed.device) == ("fp32", 50, 10, "cuda")
    assert load_config(None, {"seed": 7}).seed == 7
    # the preset file is not modified by an override
    assert load_config("gpu").embed.dtype == "bf16"


def test_bad_overrides():
    assert error_of("demo", {"embed.dtyp": "fp32"}) == "unknown override key 'embed.dtyp' (did you mean 'dtype'?)"
    assert error_of(None, {"seed.x": 1}) == "override key 'seed.x': 'seed' is a value, not a section"
    assert "'embed.dtype'" in error_of("demo", {"embed.dtype": "fp8"})


def test_dict_input_is_not_mutated():
    data = {"embed": {"dtype": "bf16"}}
    load_config(data, {"embed.dtype": "fp32"})
    assert data == {"embed": {"dtype": "bf16"}}


def test_null_section_means_defaults():
    assert load_config({"embed": None}) == ClioConfig()


def test_file_errors_name_the_file(tmp_path):
    missing = tmp_path / "absent.yaml"
    assert str(missing) in error_of(missing)
    assert "presets: " in error_of("no-such-preset")
    bad = tmp_path / "bad.yaml"
    bad.write_text("embed:\n  model: [unclosed\n")
    assert error_of(bad).startswith(f"cannot parse config {bad}:")
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    assert error_of(listy) == f"config {listy} must be a mapping of sections, not a list"


def test_empty_file_is_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_config(path) == ClioConfig()


def test_to_yaml_roundtrip(tmp_path):
    c = load_config("clio", {"embed.max_length": 128, "input.facet_columns": ["country"]})
    path = tmp_path / "out.yaml"
    path.write_text(c.to_yaml())
    assert load_config(path) == c
    assert list(yaml.safe_load(c.to_yaml())) == list(ClioConfig.model_fields)


def test_embed_section_is_keyword_compatible():
    # the embedder is called as embed(texts, **cfg.embed.model_dump())
    import inspect

    from clio_engine.embed.pipeline import embed

    keys = set(load_config("gpu").embed.model_dump())
    assert keys == {
        "model", "device", "dtype", "batch_tokens", "max_batch_rows", "max_length", "chunk_size",
        "cache_dir", "dedupe", "progress", "tokenizer_workers",
    }
    assert keys <= set(inspect.signature(embed).parameters)


def test_seed_must_fit_32_bits():
    assert load_config(None, {"seed": 2**32 - 1}).seed == 2**32 - 1
    assert error_of(None, {"seed": 2**32}) == "config key 'seed' must be less than or equal to 4294967295, got 4294967296"


@pytest.mark.parametrize("key,value,expected", [
    ("cluster.k", True, "config key 'cluster.k' expects int or null, got True (bool)"),
    ("seed", False, "config key 'seed' expects int, got False (bool)"),
    ("hierarchy.top", 2.5, "config key 'hierarchy.top' expects int, got 2.5 (float)"),
    ("privacy.min_users", "5", "config key 'privacy.min_users' expects int, got '5' (str)"),
    ("embed.batch_tokens", True, "config key 'embed.batch_tokens' expects int or null, got True (bool)"),
])
def test_integers_are_strict(key, value, expected):
    assert error_of(None, {key: value}) == expected


def test_every_integer_key_is_strict():
    """No integer key of any section coerces a bool (YAML's `yes`, `true`) into 1."""
    from clio_engine.config import ClioConfig as C

    def int_keys(model, prefix=""):
        for name, info in model.model_fields.items():
            sub = info.annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                yield from int_keys(sub, f"{name}.")
            elif int in (sub, *typing.get_args(sub)):
                yield prefix + name

    keys = list(int_keys(C))
    assert {"seed", "cluster.k", "hierarchy.top", "output.map_sample"} <= set(keys)
    for key in keys:
        assert f"'{key}' expects int" in error_of(None, {key: True}), key


def test_top_above_an_explicit_k_is_accepted_as_above_a_derived_one():
    """The hierarchy stage caps the top level at the base clusters with a warning naming k (test_pipeline,
    test_cli_conventions); refusing only an explicit k made `--k 3` an error where a derived 3 was a warning."""
    cfg = load_config(None, {"cluster.k": 10, "hierarchy.top": 50})
    assert (cfg.cluster.k, cfg.hierarchy.top) == (10, 50)
    assert load_config(None, {"cluster.k": 10, "hierarchy.top": 10}).hierarchy.top == 10
    assert load_config(None, {"cluster.k": 10, "hierarchy.top": 50, "hierarchy.levels": 1}).cluster.k == 10  # no upper level
    assert load_config(None, {"hierarchy.top": 50}).cluster.k is None  # k from N: checked once N is known


def test_null_users_option():
    assert ClioConfig().input.null_users == "unknown"
    assert load_config(None, {"input.null_users": "reject"}).input.null_users == "reject"
    assert error_of(None, {"input.null_users": "drop"}) == (
        "config key 'input.null_users' expects one of 'unknown', 'reject', got 'drop' (str)")


def test_default_yaml_comments_state_the_code_defaults():
    """default.yaml's "null = A on CPU, B on CUDA" comments are the embedder's DEVICE_DEFAULTS."""
    import re

    from clio_engine.embed.pipeline import DEVICE_DEFAULTS

    stated = {m.group(1): (int(m.group(2)), int(m.group(3))) for m in re.finditer(
        r"^\s+(\w+): null\s+#.*null = (\d+) on CPU, (\d+) on CUDA", preset_text("default"), re.M)}
    assert stated == {k: (DEVICE_DEFAULTS["cpu"][k], DEVICE_DEFAULTS["cuda"][k]) for k in DEVICE_DEFAULTS["cpu"]}


def test_an_infinite_epsilon_is_refused_in_one_line():
    """Review: privacy.epsilon: .inf passed load_config (a 'DP' run without noise); only run() refused it."""
    with pytest.raises(ConfigError, match="config key 'privacy.epsilon' must be a finite number, got inf"):
        load_config(None, {"privacy.epsilon": float("inf")})


def test_a_missing_config_and_a_directory_given_as_config_are_told_apart(tmp_path):
    """An analyst's review: a directory passed as the config was reported "not found", though it exists."""
    assert error_of(tmp_path / "nope.yaml").startswith(f"config file not found: {tmp_path / 'nope.yaml'} (presets: ")
    (tmp_path / "configs").mkdir()
    assert error_of(tmp_path / "configs").startswith(f"config {tmp_path / 'configs'} is a directory, not a YAML file")
