"""economic: the Economic Index layer (SPEC §12) — each record mapped onto an O*NET task, and the published
economic numbers (task / occupation / SOC-group shares, task penetration, collaboration modes, geographies
with the AI Usage Index, concentration) as rows of the Index's long layout, through the privacy floors.

Enabled by `economic.taxonomy: onet`. Files: `private/economic.parquet` (per record: row, task, similarity,
margin, confidence, middle and top node of the semantic task tree, user, collaboration and geographies —
per-record, so private) and the published `economic.parquet` (the long rows; `release/aggregates.csv`
appends them). The semantic task tree and the statements' vectors are public O*NET material: they live in
the shared embedding cache (`clio_engine.economic.task_tree`), not in the run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clio_engine.errors import ConfigError
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.rundir import write_parquet
from clio_engine.pipeline.steps.facets import TASK as TASK_FACET  # one name for the task facet
from clio_engine.runfiles import PRIVATE

FILE = "economic.parquet"  # published rows (analyst zone; release/aggregates.csv appends them)
PER_RECORD = f"{PRIVATE}/economic.parquet"


def enabled(cfg) -> bool:
    return cfg.economic.taxonomy != "none"


def _reads(cfg) -> tuple[str, ...]:
    from clio_engine.llm.session import LLM_READS

    # input.text_facet: a task extracted as the text facet is the text itself (mapped_column)
    reads = ("economic", "embed", "seed", "facets.extract", "facets.fields", "input.text_facet", "privacy.min_users",
             "privacy.min_records", "privacy.epsilon")
    # llm.backend always: it decides whether the model chooses per level (with economic.llm_choice).
    return reads + (LLM_READS if _uses_llm(cfg) else ("llm.backend",))


def _uses_llm(cfg) -> bool:
    return cfg.economic.llm_choice and cfg.llm.backend != "none"


def _check(ctx):
    cfg = ctx.cfg
    if cfg.privacy.epsilon is not None:
        raise ConfigError("economic.taxonomy = onet does not support privacy.epsilon yet: its counts are "
                          "thresholded, not noised; unset one of them")
    e = cfg.economic  # settings the O*NET stage would refuse only after embedding ~54k task statements
    if e.tree_top > e.tree_mid:
        raise ConfigError(f"economic.tree_top = {e.tree_top} exceeds economic.tree_mid = {e.tree_mid}: the task "
                          "tree's top level groups its middle level")
    if e.no_task_floor is not None and not -1.0 <= e.no_task_floor <= 1.0:
        raise ConfigError(f"economic.no_task_floor = {e.no_task_floor} is not a cosine similarity in [-1, 1]")
    names = ctx["records"].records.facet_columns
    col = cfg.economic.task_column
    if col is not None and col not in names and not (col == TASK_FACET and _task_extracted(cfg)):
        raise ConfigError(f"economic.task_column = {col!r} is not a facet column of the input "
                          f"(facet columns: {', '.join(names) or 'none'})")


def _task_extracted(cfg) -> bool:
    """Whether the facets stage extracts the task (listed in `facets.fields`, or the text facet itself)."""
    return cfg.facets.extract and (TASK_FACET in cfg.facets.fields or cfg.input.text_facet == TASK_FACET)


def mapped_column(cfg, records) -> str | None:
    """The column whose text is mapped to a task (None: the embedded text itself): `economic.task_column`
    where the input has it; else (null or "task") the extracted task facet; else the text."""
    from clio_engine.records import EXTRACTED_TASK

    col = cfg.economic.task_column
    if col is not None and col in records.facet_columns:
        return col
    if col in (None, TASK_FACET) and _task_extracted(cfg):
        # text_facet task: the embedded text is the task already
        return EXTRACTED_TASK if EXTRACTED_TASK in records.table.column_names else None
    return col


def mapped_texts_and_vectors(ctx) -> tuple[list[str], np.ndarray]:
    """(texts [N], vectors [N, D]) of what is mapped: economic.task_column (or the extracted task facet; a
    record without one falls back to its text) embedded with the run's model, else the run's own texts and
    embeddings. The texts feed the mapper's lexical (TF-IDF) half."""
    from clio_engine.embed import embed
    from clio_engine.runfiles import EMBED_STORE

    cfg, records = ctx.cfg, ctx["facets"].records
    col = mapped_column(cfg, records)
    if col is None:
        return records.texts, np.asarray(ctx["embed"], dtype=np.float32)
    values = records.table.column(col).to_pylist()
    texts = [v if isinstance(v, str) and v.strip() else t for v, t in zip(values, records.texts)]
    settings = {**cfg.embed.model_dump(), "progress": False}
    store = None if settings["cache_dir"] is not None else ctx.rd / EMBED_STORE
    return texts, np.asarray(embed(texts, store_dir=store, **settings), dtype=np.float32)


def _tree(ctx):
    """The semantic task tree for the run's model (built once, then read from the shared cache)."""
    from clio_engine.economic.onet import load_taxonomy
    from clio_engine.economic.task_tree import build_task_tree

    e = ctx.cfg.economic
    options = {**ctx.cfg.embed.model_dump(), "progress": False}
    return build_task_tree(load_taxonomy(), embed_options=options, mid=e.tree_mid, top=e.tree_top, seed=ctx.cfg.seed)


def record_occupations(taxonomy, task: np.ndarray) -> dict[str, pa.Array]:
    """Per record: the SOC major group of its task and the occupations listing it (";"-joined O*NET-SOC codes,
    each counting 1/k of the record), null without a task."""
    codes = taxonomy.occupations.soc_code.to_numpy()
    listed = taxonomy.links.groupby("task").occupation.apply(lambda o: ";".join(codes[o.to_numpy()]))
    by_task = listed.reindex(range(taxonomy.n_tasks)).to_numpy()
    majors = taxonomy.majors.title.to_numpy()[taxonomy.task_major]
    has = task >= 0
    safe = np.where(has, task, 0)
    return {"soc_major": pa.array(np.where(has, majors[safe], None).tolist(), pa.string()),
            "occupations": pa.array(np.where(has, by_task[safe], None).tolist(), pa.string())}


def text_column(values: pd.Series) -> pa.Array:
    """[N] strings of a frame's column, a missing value null: pandas' str dtype holds None as NaN, which a plain
    `pa.array(..., pa.string())` refuses (review: one empty country cell ended the run with an internal error)."""
    return pa.array(values.to_numpy(dtype=object), pa.string(), from_pandas=True)


def _compute(ctx):
    from clio_engine.economic.aggregates import economic_rows
    from clio_engine.economic.geography import population_table
    from clio_engine.economic.mapping import DEFAULT_HYBRID_FLOOR, llm_chooser, map_to_tasks
    from clio_engine.economic.onet import load_taxonomy

    cfg, e, loaded = ctx.cfg, ctx.cfg.economic, ctx["facets"]
    records, taxonomy, tree = loaded.records, load_taxonomy(), _tree(ctx)
    texts, vectors = mapped_texts_and_vectors(ctx)
    chooser = llm_chooser(cfg, texts, tree, taxonomy.task_text) if _uses_llm(cfg) else None
    floor = "default" if e.no_task_floor is None else e.no_task_floor  # "default": the mapper's calibrated floor
    m = map_to_tasks(vectors, tree, texts=texts, candidates=e.candidates, no_task_floor=floor, chooser=chooser)
    per_record = pa.table({"row": records.table.column("row"), "task": pa.array(m.task, pa.int64()),
                           "similarity": pa.array(m.similarity, pa.float32()), "margin": pa.array(m.margin, pa.float32()),
                           "confidence": pa.array(m.confidence, pa.float32()), "mid": pa.array(m.mid, pa.int64()),
                           "top": pa.array(m.top, pa.int64()), "user": pa.array(loaded.users, pa.int64()),
                           **record_occupations(taxonomy, m.task)})
    frame = pd.DataFrame({"user": loaded.users, "task": m.task})
    names = set(records.facet_columns)
    if e.collaboration_column and e.collaboration_column in names:
        frame["collaboration"] = records.table.column(e.collaboration_column).to_pylist()
    geos = [g for g in e.geography_columns if g in names]
    for g in geos:
        frame[g] = records.table.column(g).to_pylist()
    for column in frame.columns[2:]:  # what `clio-engine compare` resamples by user, next to the task
        per_record = per_record.append_column(column, text_column(frame[column]))
    write_parquet(ctx.rd / PER_RECORD, per_record)
    population, denominator = population_table(e.population) if geos else (None, None)
    result = economic_rows(frame, taxonomy, min_users=cfg.privacy.min_users, min_records=cfg.privacy.min_records,
                           population=population, geography_columns=geos, min_geo_records=e.min_geo_records,
                           denominator=denominator)
    rows = result.rows
    write_parquet(ctx.rd / FILE, pa.Table.from_pandas(rows, preserve_index=False))
    mapped = m.task >= 0
    info = {"taxonomy": e.taxonomy, "records": int(len(m.task)), "no_task": int((~mapped).sum()),
            "no_task_floor": DEFAULT_HYBRID_FLOOR if floor == "default" else float(floor), "mean_similarity": round(float(m.similarity[mapped].mean()), 4) if mapped.any() else None,
            "mapped_text": mapped_column(cfg, records) or "the embedded text",
            "collaboration_column": e.collaboration_column if "collaboration" in frame else None,
            "geography_columns": geos, "population_denominator": denominator, "rows": int(len(rows)),
            **{k: v for k, v in result.facts.items() if k not in ("denominator",)}}
    if chooser is not None:  # the model's picks: records shown per level, screened as not work, fallbacks
        info["llm_choice"] = {"shown": dict(m.chooser_calls), "not_work": chooser.not_work,
                              "fallbacks": chooser.fallbacks}
        if chooser.usage:
            info["llm"] = chooser.usage
    return rows, info


def _load(ctx):
    return pq.read_table(ctx.rd / FILE).to_pandas()


register_stage(Stage("economic", _compute, _load, upstream=("records", "facets", "embed"), reads=_reads,
                     artifacts=(FILE, PER_RECORD), enabled=enabled, check=_check,
                     version=3))  # 3: maps the extracted task facet; 2: values through privacy.escape.facet_label
