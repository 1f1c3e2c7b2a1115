"""Clio's synthetic check on the demo: 20k generated summaries through the whole pipeline with the
default model; the clusters must reconstruct the generator's known topics (Clio reports 94%)."""
from __future__ import annotations

import pytest

from clio_engine import generate_conversations
from clio_engine.datasets import reconstruction_accuracy
from clio_engine.pipeline import run

pytestmark = [pytest.mark.quality, pytest.mark.slow]


def test_demo_reconstructs_the_known_topics(tmp_path):
    # The explorer map (UMAP of 20k points) is not what this test checks; it costs a minute on 2 cores.
    result = run("demo", out=tmp_path / "demo", overrides={"embed.progress": False, "output.explorer": False})
    truth = generate_conversations(20_000, seed=0).set_index("id")
    a = result.assignments
    assert len(a) == 20_000 and (a.status == "clustered").all()
    known = truth.loc[a["id"].to_numpy()]
    accuracy = {level: reconstruction_accuracy(known[level].to_numpy(), a["level_0"].to_numpy())
                for level in ("subtopic", "topic", "domain")}
    print(f"base-level reconstruction accuracy: {accuracy}")
    assert accuracy["topic"] >= 0.90, accuracy
    assert accuracy["domain"] >= accuracy["topic"] >= accuracy["subtopic"]
    # Most records sit in published clusters: the demo's users are many and power-law distributed.
    assert result.manifest["privacy"]["levels"][0]["published_record_share"] > 0.8
