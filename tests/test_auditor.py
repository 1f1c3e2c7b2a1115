"""The privacy auditor (`privacy.auditor: true`) through the real pipeline against the fake OpenAI server:
a name the fake scores 1 is renamed and re-audited — withheld when the rename still points to a person,
kept renamed when it does not — with its counts in manifest.json; a server answering only 500s withholds
every name (fail closed)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from clio_engine import generate_conversations, run
from clio_engine.config import load_config
from clio_engine.naming.namer import NodeName
from clio_engine.privacy.auditor import WITHHELD, audit_names
from tests.fake_answers_naming import JOHN, MARIA, answer
from tests.fake_llm_servers import FakeServer, Reply

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit
KEY_ENV = "CLIO_TEST_FAKE_LLM_KEY"


class _AlwaysFails(dict):
    """A `FakeServer.script` that answers every prompt with HTTP 500."""

    def get(self, key, default=None):
        return [Reply(status=500)]


@pytest.fixture
def server():
    os.environ.setdefault(KEY_ENV, "fake-key")
    with FakeServer("openai") as srv:
        srv.responder = answer
        yield srv


def overrides(srv, tiny_bert_dir, **extra) -> dict:
    return {"embed.model": str(tiny_bert_dir), "embed.progress": False, "input.user_column": "user_id",
            "cluster.k": 10, "hierarchy.levels": 2, "hierarchy.top": 3, "privacy.min_users": 2,
            "privacy.min_records": 3, "privacy.scrubber": "rules", "privacy.auditor": True, "output.explorer": False,
            "llm.backend": "openai", "llm.model": "fake", "llm.base_url": srv.url + "/v1", "llm.api_key_env": KEY_ENV,
            "llm.progress": False, "llm.backoff_s": 0.01, **extra}


def test_a_name_pointing_to_a_person_is_renamed_then_withheld(server, tiny_bert_dir, tmp_path):
    frame = generate_conversations(800, seed=4)[["id", "text", "user_id"]]
    maria, john = 17, 401
    frame.loc[maria, "text"] += f" {MARIA}"
    frame.loc[john, "text"] += f" {JOHN}"
    # every record of a node is shown to the namer, so each node holding a planted record is named after a person
    result = run(None, input=frame, out=tmp_path / "run",
                 overrides=overrides(server, tiny_bert_dir, **{"naming.strategy": "llm", "naming.in_examples": 1000}))
    a = result.assignments.set_index("id").loc[frame["id"]]
    assert a["published"].all()
    nodes = lambda row: {f"{l}.{int(a.iloc[row][f'level_{l}'])}" for l in range(2)}  # noqa: E731
    withheld, renamed = nodes(maria), nodes(john) - nodes(maria)
    assert renamed, "the planted records must sit in different nodes at some level"
    c = result.clusters.set_index("id")
    for node in withheld:
        row = c.loc[node]
        assert row["name"] == WITHHELD and row["description"] == "" and len(row["keywords"]) == 0
        assert len(row["examples"]) == 0 and row["published"] and row["size"] > 0  # counts stay published
    for node in renamed:
        assert "John Smith" not in c.loc[node, "name"] and c.loc[node, "name"].startswith("Write to someone")
    others = c[(c["kind"] == "cluster") & c["published"] & ~c.index.isin(withheld | renamed)]
    assert others["name"].str.startswith("Discuss").all()
    manifest = json.loads((result.dir / "manifest.json").read_text())
    report = manifest["stages"]["names"]["auditor"]
    n_pub = int(((c["kind"] == "cluster") & c["published"]).sum())
    assert report["audited"] == n_pub
    assert (report["flagged"], report["renamed"], report["withheld"]) == (len(withheld) + len(renamed), len(renamed),
                                                                         len(withheld))
    assert report["scores"] == {"1": len(withheld) + len(renamed), "4": n_pub - len(withheld) - len(renamed)}
    assert report["reasons"] == {"score below minimum after renaming": len(withheld)}
    # one audit per node, one rename and one re-audit per flagged node
    assert report["llm"]["requests"] == n_pub + 2 * report["flagged"]
    names_usage = manifest["stages"]["names"]["llm"]  # the namer's calls plus the auditor's
    assert names_usage["requests"] >= n_pub + report["llm"]["requests"]
    assert manifest["llm"]["stages"]["names"] == names_usage
    release = json.loads((result.dir / "release" / "manifest.json").read_text())
    assert "Maria" not in json.dumps(release) and "John" not in json.dumps(release)


def test_server_errors_withhold_every_name(server, tiny_bert_dir, tmp_path):
    """Fail closed: with the keyword namer and an LLM that answers only HTTP 500, nothing keeps its name."""
    server.script = _AlwaysFails()
    frame = generate_conversations(400, seed=5)[["id", "text", "user_id"]]
    result = run(None, input=frame, out=tmp_path / "run", overrides=overrides(
        server, tiny_bert_dir, **{"llm.max_retries": 0, "naming.strategy": "keywords"}))
    c = result.clusters[(result.clusters["kind"] == "cluster") & result.clusters["published"]]
    assert len(c) > 0 and c["name"].str.startswith(WITHHELD).all() and (c["description"] == "").all()
    assert not c.duplicated(["level", "name"]).any()  # numbered, so siblings stay tellable apart
    assert c["examples"].map(len).eq(0).all() and c["keywords"].map(len).eq(0).all()
    report = result.manifest["stages"]["names"]["auditor"]
    assert (report["audited"], report["failed_audits"], report["withheld"], report["renamed"]) == (len(c), len(c), len(c), 0)
    assert report["scores"] == {} and report["reasons"] == {"rename failed": len(c)}
    assert result.manifest["stages"]["names"]["namer"] == "keywords"


def test_keywords_are_audited_and_a_renamed_node_keeps_none(server):
    """Keywords are published beside the name (release/clusters.parquet) but were never shown to the auditor,
    and a renamed node kept the flagged summary's keywords — which then also suffixed a repeated sibling
    name after the audit. Now they are rated with the name, and a rename drops them."""
    from clio_engine.hierarchy.tree import Level, Tree
    from clio_engine.naming.llm import distinct_siblings

    cfg = load_config(None, {"privacy.auditor": True, "llm.backend": "openai", "llm.model": "fake",
                             "llm.base_url": server.url + "/v1", "llm.api_key_env": KEY_ENV, "llm.progress": False})
    leaky = NodeName("Write to a colleague", "Emails to coworkers. Nothing more.", ["jane.doe@example.org", "email"],
                     ["Write an email"])
    twin = NodeName("Write to a colleague", "Emails at work. Nothing more.", ["memo"], ["Write a memo"])
    names, report = audit_names(cfg, [[leaky, twin]])
    assert (report["flagged"], report["renamed"], report["withheld"]) == (1, 1, 0)
    assert names[0][0].name == "Write to a colleague" and names[0][0].keywords == []
    assert names[0][1] == twin
    tree = Tree((Level(np.full(2, -1, np.int64), np.ones(2), np.eye(2, dtype=np.float32)),))
    distinct_siblings(names, tree)
    published = json.dumps([nm.__dict__ for nm in names[0]])
    assert "jane" not in published and names[0][1].name != names[0][0].name


def test_audit_names_alone_keeps_what_passes_and_skips_unpublished(server):
    cfg = load_config(None, {"privacy.auditor": True, "llm.backend": "openai", "llm.model": "fake",
                             "llm.base_url": server.url + "/v1", "llm.api_key_env": KEY_ENV, "llm.progress": False})
    plain = NodeName("Discuss tax questions", "Conversations about taxes. Nothing more.", ["tax"], ["How do taxes work?"])
    email = NodeName("Email jane.doe@example.org", "Write to one person. Nothing more.", ["email"], ["Write an email"])
    names, report = audit_names(cfg, [[plain, None, email]])
    assert names[0][0] == plain and names[0][1] is None
    assert names[0][2].name == "Email someone" and names[0][2].examples == ["Write an email"]
    assert (report["audited"], report["renamed"], report["withheld"]) == (2, 1, 0)
    assert np.sum(list(server.hits.values())) == 4  # two audits, one rename, one re-audit
