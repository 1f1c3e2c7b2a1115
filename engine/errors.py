"""Exceptions with one-line messages that the CLI prints without a traceback."""


class ClioError(Exception):
    """Base of every error the engine raises on purpose (bad input, bad config, missing model)."""


class ConfigError(ClioError, ValueError):
    """A configuration file or value is invalid; the message names the offending key."""


class InputError(ClioError, ValueError):
    """Input data cannot be read as records (missing column, unreadable file, wrong type)."""


class ModelError(ClioError, RuntimeError):
    """A model cannot be resolved, verified or loaded."""


class UnsupportedOnBackend(ClioError, NotImplementedError):
    """A backend cannot serve this call; `auto` dispatch logs `reason` once and falls back."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class OutputError(ClioError, RuntimeError):
    """Output cannot be written where asked: not a directory, read-only, or not enough free disk space."""
