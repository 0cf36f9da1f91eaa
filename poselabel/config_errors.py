"""The configuration's error types and its one-line check (``poselabel.config`` re-exports them)."""
from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is unknown, mistyped or out of range (the command line prints
    its message, one line, and exits with status 2)."""


class InputError(ConfigError, FileNotFoundError):
    """An input or output path the command cannot use: a pattern that finds no shard, a
    missing file or folder, an output that is a file."""


def check(ok: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``ok``."""
    if not ok:
        raise ConfigError(message)
