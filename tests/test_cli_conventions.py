"""Command-line conventions a new user's review found missing: assign names the new file's columns as run does,
a usage error shows the subcommand's usage, -v after the subcommand, --version, help for every argument, an
explicit --k below hierarchy.top capped as a derived one is, ShareGPT speaker names in OpenAI messages, and a
folder's column error naming the file its columns were read from."""
from __future__ import annotations

import argparse
import json
import logging
from importlib import metadata

import pandas as pd
import pytest

from clio_engine.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, _parser, main
from clio_engine.config import load_config
from clio_engine.conversations import ConversationError, parse, split_transcript, transcript
from clio_engine.datasets import generate_conversations
from clio_engine.errors import InputError
from clio_engine.pipeline import run
from clio_engine.records import load_records

pytestmark = pytest.mark.unit


def _tiny(model_dir, cache) -> dict:
    return {"embed.model": str(model_dir), "embed.progress": False, "embed.device": "cpu", "cluster.device": "cpu",
            "embed.cache_dir": str(cache), "cluster.k": 6, "hierarchy.levels": 2, "hierarchy.top": 3,
            "input.user_column": "user_id", "input.facet_columns": ["language"]}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_bert_dir):
    """A finished run (columns text, user_id, language) and a later period's file naming them otherwise."""
    root = tmp_path_factory.mktemp("conventions")
    frame = generate_conversations(300, seed=0)[["id", "text", "user_id", "language"]]
    result = run(None, input=frame, out=root / "q1", overrides=_tiny(tiny_bert_dir, root / "cache"))
    later = generate_conversations(300, seed=1)[["id", "text", "user_id", "language"]]
    later["id"] = "q2-" + later["id"].astype(str)  # other records: assign refuses records the reference counts
    later = later.rename(columns={"id": "ref", "text": "utterance", "user_id": "account", "language": "lang"})
    later.to_parquet(root / "q2.parquet")
    return result.dir, root / "q2.parquet"


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == EXIT_USAGE
    return capsys.readouterr().err


# ------------------------------------------------------------------------------------ 1. assign's columns

def test_assign_reads_a_new_file_that_names_its_columns_otherwise(reference, tmp_path, capsys, caplog):
    """Review: "user column 'account' not found" and no flag to say so; the facet renamed is allowed, said."""
    ref, q2 = reference
    with caplog.at_level(logging.WARNING):
        code = main(["assign", str(ref), "--input", str(q2), "--out", str(tmp_path / "q2"), "--text-column",
                     "utterance", "--id-column", "ref", "--user-column", "account", "--facets", "lang",
                     "--no-progress"])
    assert code == EXIT_OK, capsys.readouterr().err
    manifest = json.loads((tmp_path / "q2" / "manifest.json").read_text())
    assert manifest["input"]["accepted"] == 300 and manifest["input"]["facets"] == ["lang"]
    assert manifest["users"]["has_user_ids"] is True
    assert manifest["config"]["input"]["text_column"] == "utterance"
    assert manifest["config"]["cluster"]["method"] == "reference"
    assert "facet columns lang here but language in" in caplog.text


def test_assign_with_a_renamed_text_column_still_refuses_another_kind_of_text(reference, tmp_path, capsys):
    ref, q2 = reference
    code = main(["assign", str(ref), "--input", str(q2), "--out", str(tmp_path / "q2"), "--text-column", "utterance",
                 "--user-column", "account", "--facets", "lang", "--set", "input.conversation_text=user"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_INPUT and "\n" not in err
    assert "input.conversation_text is 'user' here but 'transcript' in the reference run" in err
    assert not (tmp_path / "q2" / "manifest.json").exists()


# ------------------------------------------------------------------------------- 2. the subcommand's usage

@pytest.mark.parametrize("argv, command", [
    (["assign", "runs/q1", "--input", "q2.parquet", "--out", "runs/q2", "--bogus", "x"], "assign"),
    (["run", "default", "--input", "a.csv", "--frobnicate"], "run"),
    (["-v", "compare", "a", "b", "--bootstrap", "9"], "compare"),
])
def test_an_unknown_option_prints_the_subcommands_usage(capsys, argv, command):
    err = _usage_error(capsys, argv)
    assert err.startswith(f"usage: clio-engine {command} [-h]"), err
    assert err.strip().splitlines()[-1].startswith(f"clio-engine {command}: error: unrecognized arguments: ")


# ----------------------------------------------------------------------------------------- 3. -v after it

@pytest.mark.parametrize("argv, verbose", [
    (["run", "default"], False), (["-v", "run", "default"], True), (["run", "default", "-v"], True),
    (["run", "default", "--verbose"], True), (["-v", "run", "default", "-v"], True), (["purge", "x", "-v"], True),
])
def test_verbose_is_read_before_and_after_the_subcommand(argv, verbose):
    assert _parser().parse_args(argv).verbose is verbose


def test_verbose_after_the_subcommand_prints_the_traceback(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text("{}")
    for name in ("clusters.parquet", "assignments.parquet", "facets.parquet"):
        (tmp_path / name).write_bytes(b"not parquet")
    assert main(["explore", str(tmp_path), "--no-open", "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err
    assert main(["run", "default", "-v", "--input", str(tmp_path / "missing.csv")]) == EXIT_INPUT  # not exit 2


# ----------------------------------------------------------------------------------------------- 4. version

def test_version_prints_the_installed_distributions_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"clio-engine {metadata.version('clio-engine')}\n"


# ------------------------------------------------------------------------------------------------- 5. help

def _parsers(parser: argparse.ArgumentParser, name: str = "clio-engine"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_every_argument_of_every_command_has_help():
    missing = []
    for name, parser in _parsers(_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS or not action.help.strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
            for choice in getattr(action, "_choices_actions", []):  # the subcommands' one-line summaries
                if not (choice.help or "").strip():
                    missing.append(f"{name} {choice.dest}")
    assert missing == []


def test_compare_help_describes_each_argument(capsys):
    compare = dict(_parsers(_parser()))["clio-engine compare"]
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for name in ("run_a", "run_b", "--out", "--boot", "--alpha", "--seed"):
        action = next(a for a in compare._actions if name in (a.dest, *a.option_strings))
        assert action.help and " ".join(action.help.split()) in out, name


# ------------------------------------------------------------------------------------------- 6. explicit k

def test_an_explicit_k_below_the_top_level_is_accepted():
    cfg = load_config("default", {"cluster.k": 3})
    assert cfg.cluster.k == 3 and cfg.hierarchy.top == 10 and cfg.hierarchy.levels > 1


def test_run_with_an_explicit_k_caps_the_top_level_and_says_so(tmp_path, tiny_bert_dir, capsys, caplog):
    """Review: `--k 3` was "hierarchy.top = 10 exceeds cluster.k = 3", exit 3, where a derived k of 3 is capped."""
    src = tmp_path / "banking.csv"
    generate_conversations(200, seed=3)[["id", "text", "user_id"]].rename(columns={"text": "utterance"}).to_csv(
        src, index=False)
    with caplog.at_level(logging.WARNING):
        code = main(["run", "default", "--input", str(src), "--text-column", "utterance", "--k", "3", "--out",
                     str(tmp_path / "run"), "--model", str(tiny_bert_dir), "--cache-dir", str(tmp_path / "cache"),
                     "--device", "cpu", "--no-progress"])
    assert code == EXIT_OK, capsys.readouterr().err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["levels"][0] == 3 and max(manifest["levels"]) <= 3
    note = manifest["stages"]["hierarchy"]["note"]
    assert note == "hierarchy.top = 10 capped at the 3 base clusters (cluster.k = 3)"  # (no "only … distinct")
    assert note in caplog.text


# --------------------------------------------------------------------------------- 7. roles in `messages`

def test_openai_messages_accept_the_sharegpt_speaker_names():
    mixed = [{"role": "human", "content": "Reverse a list in Python?"}, {"role": "gpt", "content": "Use xs[::-1]."}]
    assert parse(mixed) == [("user", "Reverse a list in Python?"), ("assistant", "Use xs[::-1].")]
    records = load_records([{"id": "a", "messages": mixed}])
    assert len(records) == 1 and records.texts == ["User: Reverse a list in Python?\nAssistant: Use xs[::-1]."]


def test_developer_is_a_system_prompt_and_tool_output_is_never_user_text():
    chat = [{"role": "developer", "content": "Answer tersely."}, {"role": "user", "content": "weather in Oslo?"},
            {"role": "tool", "content": "SECRET tool output", "tool_call_id": "c1"},
            {"role": "assistant", "content": "Cold."}]
    assert parse(chat)[0] == ("system", "Answer tersely.")
    text, prompts = split_transcript(chat)
    assert prompts == "System: Answer tersely." and "SECRET" not in text and "[tool result]" in text
    assert split_transcript(chat, user_only=True)[0] == "User: weather in Oslo?"
    with pytest.raises(ConversationError, match="no user message with text"):
        transcript([{"role": "tool", "content": "only a tool spoke"}])


def test_an_unknown_role_lists_the_accepted_names():
    with pytest.raises(ConversationError) as e:
        parse([{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}])
    assert str(e.value) == ("messages[1].role is 'bot'; expected one of user, assistant, system, developer, tool, "
                            "function, human, gpt")


# ------------------------------------------------------------------------------------------ 8. a folder

def test_a_folders_missing_column_names_the_file_whose_columns_are_listed(tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    pd.DataFrame({"id": ["1"], "utterance": ["hello"]}).to_csv(folder / "a.csv", index=False)
    (folder / "b.jsonl").write_text(json.dumps({"id": "2", "utterance": "hi", "extra": 1}) + "\n")
    pd.DataFrame({"id": ["3"], "utterance": ["hey"]}).to_parquet(folder / "c.parquet")
    with pytest.raises(InputError) as e:
        load_records(folder)
    assert str(e.value) == (f"text column 'text' not found in {folder}; available columns of {folder / 'a.csv'} "
                            "(the first of 3 files): id, utterance")
    with pytest.raises(InputError, match=r"'chat' not found in .*data; available columns of .*a\.csv \(the first"):
        load_records(folder, conversation_column="chat")
    assert main(["run", "default", "--input", str(folder), "--out", str(tmp_path / "r")]) == EXIT_INPUT
    assert f"available columns of {folder / 'a.csv'} (the first of 3 files): id, utterance" in capsys.readouterr().err


def test_a_single_files_missing_column_message_is_unchanged(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": ["1"], "utterance": ["hello"]}).to_csv(path, index=False)
    with pytest.raises(InputError) as e:
        load_records(path)
    assert str(e.value) == f"text column 'text' not found in {path}; available columns: id, utterance"
