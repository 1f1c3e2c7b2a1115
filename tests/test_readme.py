"""README's two set-up commands stay at its top, and .ci/run runs README's test command verbatim."""
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.unit


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_starts_with_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("clio-engine demo") and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines


# ------------------------------------------------------------------ README's stated defaults = the code's


def _readme() -> str:
    return " ".join((REPO / "README.md").read_text().split())  # one line: statements may wrap


def _stated(pattern: str) -> tuple[str, ...]:
    match = re.search(pattern, _readme())
    assert match, f"README no longer states {pattern!r}"
    return match.groups()


@pytest.mark.parametrize("key", ["batch_tokens", "max_batch_rows", "chunk_size"])
def test_readme_states_the_embedders_device_defaults(key):
    from clio_engine.embed.pipeline import DEVICE_DEFAULTS

    cpu, cuda = _stated(rf"`{key}` .{{0,80}}?default (\d+) on CPU, (\d+) on CUDA")
    assert (int(cpu), int(cuda)) == (DEVICE_DEFAULTS["cpu"][key], DEVICE_DEFAULTS["cuda"][key])


def test_readme_states_the_kmeanspp_sample_size():
    from clio_engine.cluster.kmeans_init import KMEANSPP_MIN_SAMPLE, KMEANSPP_PER_CENTER

    assert _stated(r"on a sample of max\((\d+), (\d+)·k\) rows") == (str(KMEANSPP_MIN_SAMPLE), str(KMEANSPP_PER_CENTER))


def test_readme_states_the_embed_signature():
    import inspect

    from clio_engine.embed.pipeline import embed  # `ce.embed` may be the package, forwarding calls

    params = []
    for p in inspect.signature(embed).parameters.values():
        if p.kind is p.KEYWORD_ONLY and "*" not in params:
            params.append("*")
        params.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}".replace("'", '"'))
    assert f"`ce.embed({', '.join(params)})`" in _readme()


def test_readme_states_the_config_defaults():
    from clio_engine.config import ClioConfig, load_config

    c, strict, demo = ClioConfig(), load_config("strict"), load_config("demo")
    assert _stated(r"\(default size (\d+):") == (str(c.cluster.target_cluster_size),)
    assert _stated(r"\(defaults (\d+) and (\d+); preset `strict`: (\d+) and (\d+);") == tuple(
        map(str, (c.privacy.min_users, c.privacy.min_records, strict.privacy.min_users, strict.privacy.min_records)))
    assert _stated(r"`output.map_sample` points in all at most \(default (\d+)\)") == (str(c.output.map_sample),)
    assert _stated(r"The demo preset uses (\d+) records per base cluster \((\d+) clusters\)") == (
        str(demo.cluster.target_cluster_size), str(demo.input.synthetic_records // demo.cluster.target_cluster_size))
    assert _stated(r"`clio-engine demo` runs all of it on (\d+)k synthetic") == (str(demo.input.synthetic_records // 1000),)


def test_readme_states_the_exit_codes():
    from clio_engine import cli

    for code in (cli.EXIT_INTERNAL, cli.EXIT_USAGE, cli.EXIT_INPUT, cli.EXIT_INTERRUPTED):
        assert f"`{code}` " in _readme()
    stated = _stated(r"Exit codes: `0` success; `(\d+)` internal error .*?; `(\d+)` usage error .*?; `(\d+)` bad config or input")
    assert tuple(map(int, stated)) == (cli.EXIT_INTERNAL, cli.EXIT_USAGE, cli.EXIT_INPUT)


def test_readme_uses_the_namespaced_imports():
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks and "import clio_engine as ce" in blocks[0]
    assert not re.search(r"^\s*(import|from) (engine|kernels)\b", "\n".join(blocks), re.M)
    assert not re.search(r"(?<![\w/])engine\.[A-Za-z_]", text.split("## What works today")[1])  # no old `clio_engine.X`
    assert re.search(r"nothing installs a top-level `engine` or `kernels`", _readme())
