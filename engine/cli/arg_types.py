"""The argparse types of the command line's options: each refuses a bad value in the flag's own words."""
from __future__ import annotations

import argparse


def _setting(text: str) -> tuple[str, object]:
    """`section.key=value` with the value read as a YAML scalar or flow list (`50`, `fp32`, `null`, `[a,b]`), as
    strictly as a config file (`010` is refused, not read as octal 8)."""
    import yaml

    from clio_engine.config import load_yaml

    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key or " " in key:
        raise argparse.ArgumentTypeError(f"expected section.key=value, got {text!r}")
    try:
        return key, load_yaml(value) if value.strip() else None
    except yaml.YAMLError as e:
        problem = " ".join(str(getattr(e, "problem", None) or e).split())
        raise argparse.ArgumentTypeError(f"cannot read the value of {key!r} as YAML: {problem}") from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, got {port}")
    return port


def _int_from(low: int):
    """An argparse type: an integer ≥ `low`, refused in the flag's own words (not a library parameter's)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be ≥ {low}, got {value}")
        return value
    return parse


_positive_int = _int_from(1)
_boot = _int_from(100)  # compare_periods' own floor: fewer replicates give no usable interval


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1 (exclusive), got {text}")
    return value


def _path(text: str) -> str:
    # An empty path is the current directory to the readers: `--input ""` (an unset shell variable) would
    # read every file here as records.
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path")
    return text


def _batch_wait_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 10_000:  # the server's own bound (batch_wait_s ≤ 10), said in the flag's unit
        raise argparse.ArgumentTypeError(f"must be from 0 to 10000 milliseconds, got {text}")
    return value
