"""README's command-line synopsis agrees with `--help` (review 53, finding 13)."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from clio_engine.cli import _parser
from clio_engine.config import load_config

TEXT = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
README = " ".join(TEXT.split())  # one line: statements may wrap
SYNOPSIS = re.search(r"## Command line\n+```bash\n(.*?)```", TEXT, re.S).group(1).splitlines()
pytestmark = pytest.mark.unit


def _command(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _option(command: str, flag: str) -> argparse.Action:
    return next(a for a in _command(command)._actions if flag in a.option_strings)


def _line(command: str) -> str:
    """The synopsis line of `command` (its options, before the comment)."""
    return next(line for line in SYNOPSIS if line.startswith(f"clio-engine {command} ")).split("#")[0]


def test_every_compare_argument_has_help():
    missing = [a.dest for a in _command("compare")._actions if not a.help]
    assert missing == []


def test_readme_states_serve_llm_batch_size_default():
    stated = re.search(r"\[--batch-size (\d+)\]", _line("serve-llm"))
    assert stated and int(stated.group(1)) == _option("serve-llm", "--batch-size").default


@pytest.mark.parametrize("command, flags", [("audit", ["--min-users", "--min-records"]),
                                            ("compare", ["--boot", "--seed"]), ("explore", ["--no-open"])])
def test_readme_synopsis_names_the_options(command, flags):
    line = _line(command)
    for flag in flags:
        _option(command, flag)  # the option exists
        assert f"[{flag}" in line, (flag, line)


def test_readme_says_the_clio_preset_needs_a_hub_model_and_is_not_the_llm_hierarchy():
    cfg = load_config("clio")
    assert "/" in cfg.embed.model and f"`{cfg.embed.model}` from the Hugging Face hub" in README
    assert cfg.hierarchy.mode != "clio" and "is not `hierarchy.mode: clio`" in README
