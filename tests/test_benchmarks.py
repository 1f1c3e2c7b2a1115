"""The benchmark runner: gates, the case harness, the suite registry, and the embed suite end to end
on a tiny random model (no figures are checked: timing belongs in benchmarks/, never in tests)."""
import json

import numpy as np
import pytest

from benchmarks import common
from benchmarks.common import Case, Contender, Gate, Options, Outcome, Workload, available_suites, load_suite
from benchmarks.harness import GREEN, RED, UNGATED, run_case
from benchmarks.run import main

pytestmark = pytest.mark.unit


def test_gate_floor_and_ceiling():
    floor = Gate("min_cosine", ">=", 0.99)
    assert floor.check({"min_cosine": 0.995}) is None
    assert floor.check({"min_cosine": 0.99}) is None
    assert floor.check({"min_cosine": 0.98}) == "min_cosine 0.98 < 0.99"
    assert "not measured" in floor.check({})
    assert floor.worst(0.995, 0.991) == 0.991
    ceiling = Gate("inertia_ratio", "<=", 1.01)
    assert ceiling.check({"inertia_ratio": 1.0}) is None
    assert ceiling.check({"inertia_ratio": 1.2}) == "inertia_ratio 1.2 > 1.01"
    assert ceiling.worst(1.0, 1.2) == 1.2
    with pytest.raises(ValueError):
        Gate("x", "==", 1.0)


def _compare(out, ref):
    return {"max_abs": float(np.abs(np.asarray(out) - np.asarray(ref)).max())}


def _case(contenders, reference="peer", baselines=("peer",)):
    data = np.arange(12.0)
    load = lambda: Workload(data, data[:3], n_items=12, n_units=24)  # noqa: E731
    return Case("fake", "c", load, tuple(contenders), reference, _compare, baselines)


CLOSE = (Gate("max_abs", "<=", 1e-6),)


def test_green_subject_gets_a_ratio_and_red_subject_never_does():
    calls = []

    def make(name, fn):
        def run(x):
            calls.append((name, len(x)))
            return fn(x)
        return run

    case = _case([
        Contender("peer", make("peer", lambda x: x * 2), peer=True),
        Contender("good", make("good", lambda x: Outcome(x * 2, {"dtype": "fp32"})), gates=CLOSE),
        # right on the warm-up sample, wrong on the full data: red after timing, not before
        Contender("drifts", make("drifts", lambda x: x * 2 + (len(x) > 3)), gates=CLOSE),
        Contender("wrong", make("wrong", lambda x: x * 3), gates=CLOSE),
        Contender("broken", make("broken", lambda x: 1 / 0), gates=CLOSE),
    ])
    result = run_case(case, repeats=3, log=lambda msg: None)
    by = {c.name: c for c in result.contenders}

    assert by["good"].gate == GREEN and by["good"].speedup["peer"] > 0
    assert by["good"].info["dtype"] == "fp32" and len(by["good"].seconds) == 3
    assert by["drifts"].gate == RED and by["drifts"].speedup["peer"] is None
    assert len(by["drifts"].seconds) == 3 and by["drifts"].metrics["max_abs"] == 1.0
    # a subject that fails the gate on the warm-up sample is never timed
    assert by["wrong"].gate == RED and by["wrong"].seconds == [] and by["wrong"].speedup["peer"] is None
    assert by["wrong"].gate_failures[0].startswith("pre-check")
    assert by["broken"].gate == RED and "ZeroDivisionError" in by["broken"].error
    assert by["broken"].speedup["peer"] is None
    assert by["peer"].gate == UNGATED and "peer" not in by["peer"].speedup
    assert sorted(result.red) == ["broken", "drifts", "wrong"]
    # warm-up on the 3-item sample, then rounds whose order rotates: no contender always goes first
    timed = [name for name, n in calls if n == 12]
    assert timed[:3] == ["peer", "good", "drifts"] and timed[3:6] == ["good", "drifts", "peer"]


def test_missing_reference_turns_every_gate_red():
    # the reference fails on the full data: nothing to compare with, so no green gate
    case = _case([Contender("peer", lambda x: 1 / 0 if len(x) > 3 else x, peer=True),
                  Contender("good", lambda x: x, gates=CLOSE)])
    by = {c.name: c for c in run_case(case, repeats=1, log=lambda msg: None).contenders}
    assert by["good"].gate == RED and by["good"].speedup["peer"] is None


def test_case_rejects_unknown_reference():
    with pytest.raises(ValueError, match="not one of its contenders"):
        _case([Contender("peer", lambda x: x, peer=True)], reference="nope")
    with pytest.raises(ValueError, match="repeat"):
        _case([Contender("peer", lambda x: x), Contender("peer", lambda x: x)])


def test_registry_finds_suite_modules_and_rejects_unknown_names():
    assert "embed" in available_suites()
    assert load_suite("embed").name == "embed"
    with pytest.raises(KeyError, match="no benchmark suite"):
        load_suite("no-such-suite")


@pytest.fixture
def fake_suite(monkeypatch):
    monkeypatch.setattr(common, "SUITES", dict(common.SUITES))

    @common.register_suite("fake_for_test", "a fake suite")
    def build(options: Options):
        good = Contender("good", lambda x: x, gates=CLOSE)
        bad = Contender("bad", lambda x: x + (len(x) > 3), gates=CLOSE)
        yield _case([Contender("peer", lambda x: x, peer=True), good] + ([bad] if options.quick else []))

    return "fake_for_test"


def test_runner_writes_json_and_fails_on_a_red_gate(fake_suite, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["--suite", fake_suite, "--repeats", "2", "--output", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["machine"]["cpu_model"] and payload["options"]["repeats"] == 2
    (case,) = payload["cases"]
    assert [c["name"] for c in case["contenders"]] == ["peer", "good"]

    assert main(["--suite", fake_suite, "--quick", "--output", str(out)]) == 1
    bad = json.loads(out.read_text())["cases"][0]["contenders"][2]
    assert bad["gate"] == "red" and bad["speedup"] == {"peer": None}
    printed = capsys.readouterr().out
    assert "RED (no speed ratio reported): c/bad" in printed
    row = next(line for line in printed.splitlines() if line.startswith("c ") and " bad " in line)
    assert "×" not in row  # no ratio printed on the red row


def test_runner_rejects_unknown_suite(capsys):
    assert main(["--suite", "no-such-suite"]) == 2
    assert "no benchmark suite" in capsys.readouterr().err


def test_medium_texts_are_cut_to_the_token_budget(tiny_bert_dir):
    from benchmarks.suites.embed import _Models

    models = _Models(Options(model=str(tiny_bert_dir)))
    long_text = "Tokenization Matters. " * 200
    short = "Keep Me As I Am."
    cut_long, same = models.cut([long_text, short], 50)
    assert same == short
    assert long_text.startswith(cut_long) and cut_long[:12] == "Tokenization"
    assert len(models.tokenizer.encode(cut_long).ids) <= 50
    tokens, truncated = models.count_tokens([long_text, short])
    assert truncated == 1 and tokens == models.max_length + len(models.tokenizer.encode(short).ids)


def test_embed_suite_end_to_end_on_a_tiny_model(tiny_bert_dir, data_dir, tmp_path):
    out = tmp_path / "embed.json"
    code = main(["--suite", "embed", "--quick", "--limit", "24", "--repeats", "1", "--model", str(tiny_bert_dir),
                 "--data-dir", str(data_dir), "--output", str(out)])
    payload = json.loads(out.read_text())
    assert [c["name"] for c in payload["cases"]] == ["short", "medium-200tok", "long-arena"]
    for case in payload["cases"]:
        by = {c["name"]: c for c in case["contenders"]}
        assert set(by) == {"st-fp32", "engine-auto", "engine-fp32"}
        assert case["n_items"] == 24 and case["info"]["unique_texts_given"] == 24
        assert case["n_units"] > 24
        fp32 = by["engine-fp32"]
        assert fp32["gate"] == "green" and fp32["metrics"]["min_cosine"] >= 0.99999, fp32
        assert fp32["speedup"]["st-fp32"] > 0 and fp32["info"]["n_unique"] == 24
        assert fp32["memory"]
        for contender in by.values():
            if contender["gate"] == "red":
                assert contender["speedup"] == {"st-fp32": None}
    assert code == (1 if any(c["gate"] == "red" for case in payload["cases"] for c in case["contenders"]) else 0)


def test_recheck_bound_flags_every_row_plain_bf16_gets_wrong(capsys):
    from benchmarks import recheck_bound

    assert recheck_bound.main(["--n", "3000", "--cases", "32:40", "--steps", "1"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (row["d"], row["k"], row["n"]) == (32, 40, 3000)
    assert row["missed"] == 0 and row["bf16_wrong"] > 0        # bf16 alone errs; the bound catches every such row
    assert 1 >= row["flagged"] >= row["full@4"] >= row["full@8"] >= row["full@16"] >= 0
    assert row["flagged"] >= row["bf16_wrong"] and 0 < row["residual_bound_flagged"] <= 1


def test_embed_versions_rejects_a_folder_that_is_not_a_checkout(tmp_path, capsys):
    from benchmarks import embed_versions

    with pytest.raises(SystemExit):
        embed_versions.main(["--checkouts", str(tmp_path)])
    assert "is not a checkout of this repository" in capsys.readouterr().err


@pytest.mark.slow
def test_serve_llm_benchmark_compares_served_and_in_process_answers(data_dir, tmp_path):
    from benchmarks import serve_llm
    from tests.test_llm_transformers import _smollm2_missing

    if _smollm2_missing():
        pytest.skip(_smollm2_missing())
    out = tmp_path / "serve.json"
    assert serve_llm.main(["--batch-sizes", "4", "--requests", "4", "--max-tokens", "2", "--rounds", "1",
                           "--output", str(out)]) == 0
    row, = json.loads(out.read_text())["rows"]
    assert row["batch_size"] == 4 and row["identical_answers"] is True
    assert row["in_process_s"] > 0 and row["served_s"] > 0
    assert row["served_over_in_process"] == pytest.approx(row["served_s"] / row["in_process_s"])


@pytest.mark.slow
def test_llm_stop_benchmark_times_both_checks_and_puts_the_layer_check_back(data_dir, tmp_path):
    from benchmarks import llm_stop
    from clio_engine.llm.backends.transformers import GivenUp
    from tests.test_llm_transformers import _smollm2_missing

    if _smollm2_missing():
        pytest.skip(_smollm2_missing())
    layer_check = GivenUp.between_layers
    out = tmp_path / "stop.json"
    assert llm_stop.main(["--rows", "2", "--prompt-tokens", "60", "--max-tokens", "4", "--rounds", "1",
                          "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["seconds_after_stop"]) == {"layer check", "token check only"}
    assert result["prompt_tokens_median"] >= 60 and 0 < result["stop_after_s"] < result["prefill_s"]
    assert GivenUp.between_layers is layer_check  # the benchmark's stand-in is not left behind
    with pytest.raises(SystemExit):
        llm_stop.main(["--stop-at", "1.5"])
