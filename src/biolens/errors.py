"""Errors and warnings users see.

Every ``BiolensError`` carries a one-line message that names the file, line or field at fault and says how to
fix it. The CLI turns them into exit code 2 without a traceback; any other exception is a bug.
"""

from __future__ import annotations


class BiolensError(Exception):
    """Base class for errors caused by the user's input or configuration."""

    def __init__(self, message: str):
        # One line, always: the CLI prints it as is.
        super().__init__(" ".join(str(message).split()))


class DataError(BiolensError):
    """Input data is missing, malformed or unusable."""


class InputError(DataError):
    """One item of a request or call is unusable; ``field`` names it (e.g. ``sequences[3]``, ``files[0]``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class ConfigError(BiolensError):
    """A configuration value or command-line option is invalid."""


class ModelError(BiolensError):
    """A model name or model argument is invalid."""


class BundleError(BiolensError):
    """A run folder (model bundle) is missing, incomplete or inconsistent."""


class BiolensWarning(UserWarning):
    """Data or configuration looks suspicious but training can go on."""


def a_or_an(word: str) -> str:
    """``word`` with its indefinite article, for messages that name a kind: "an image run", "a sequence run"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
