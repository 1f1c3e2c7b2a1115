"""The canary guarantee (SPEC §4) for every `privacy.examples` policy × every preset in configs/*.yaml: a
unique token planted in each record; the tokens of records in clusters that are not published (fewer than
min_users users or min_records records) appear in no file outside private/ (the audit's canary scan: Parquet
decoded, PNG text chunks, every other file's bytes as text, in the run directory and its release/).

Kept small (one embedding pass shared by every cell through embed.cache_dir, the tiny random BERT, 360
records): each preset's own settings are kept except
- the embedding model (the tiny BERT instead of the preset's, which needs a download), on the CPU in fp32
  (the `gpu` preset asks for CUDA/bf16; its other settings, e.g. cluster.backend auto, stay);
- floors of 250 users / 500 records (`clio`, `strict`) scaled down 10× to 25 / 50, in the same ratio: at
  360 records nothing could be published at 500, and the test would hold vacuously;
- cluster.k about N / min_records and hierarchy.top = 3, so some base clusters fall under the
  floors and some pass.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from clio_engine import generate_conversations
from clio_engine.audit import audit
from clio_engine.config import load_config
from clio_engine.pipeline import run
from tests.canary import canary_token

pytestmark = [pytest.mark.unit, pytest.mark.slow]

PRESETS = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
POLICIES = ("scrubbed", "k_anonymous", "none")
N = 360
SCALED = {250: 25, 500: 50}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    frame = generate_conversations(N, seed=21)
    frame["text"] = [f"{t} Ref {canary_token(i)}." for i, t in enumerate(frame["text"])]
    return frame, tmp_path_factory.mktemp("canary_matrix")


def test_every_preset_is_in_the_matrix():
    assert {"default", "demo", "clio", "public", "strict", "gpu"} <= set(PRESETS), PRESETS


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("preset", PRESETS)
def test_canaries_of_unpublished_clusters_stay_in_private(preset, policy, planted, tiny_bert_dir):
    frame, root = planted
    base = load_config(preset)
    floors = {k: SCALED.get(v, v) for k, v in (("privacy.min_users", base.privacy.min_users),
                                                ("privacy.min_records", base.privacy.min_records))}
    overrides = {"embed.progress": False, "embed.model": str(tiny_bert_dir), "embed.device": "cpu",
                 "embed.dtype": "fp32", "embed.cache_dir": str(root / "cache"),
                 "cluster.k": max(4, N // floors["privacy.min_records"]),  # about the floor per cluster
                 "hierarchy.levels": 3, "hierarchy.top": 3, "input.user_column": "user_id",
                 "input.facet_columns": ["language", "country"], "input.synthetic_records": None,
                 "privacy.examples": policy, **floors}
    result = run(preset, input=frame[["id", "text", "user_id", "language", "country"]],
                 out=root / f"{preset}-{policy}", overrides=overrides)
    a = result.assignments.set_index("id").loc[frame["id"]]
    hidden = ~a["published"].astype(bool).to_numpy()
    assert 0 < hidden.sum() < len(frame), f"{preset}: the setup must leave some base clusters under the floors"
    tokens = [canary_token(i) for i in range(len(frame))]
    leaked = [v for v in audit(result.dir, canaries=[t for t, h in zip(tokens, hidden) if h]) if v.attack == "canary"]
    assert leaked == [], leaked
    # The scan does see planted text where the contract lets it out: scrubbed examples of published clusters
    # (in the analyst files only; release/ never holds record text).
    shown = audit(result.dir, canaries=[t for t, h in zip(tokens, hidden) if not h])
    files = {v.file for v in shown if v.attack == "canary"}
    assert not any(f.startswith("release/") for f in files), files
    if policy == "scrubbed":
        assert files, "published clusters' examples should carry their records' tokens"
    elif policy == "none":
        assert files == set(), files
