"""Errors that carry what to do next.

Every error the CLI shows is a SidecarError: a message saying what is wrong and a tip saying
what to do about it. The CLI prints them as ``ERROR ...`` / ``TIP ...`` and exits non-zero.
"""

from __future__ import annotations


class SidecarError(Exception):
    """Base error: ``message`` says what is wrong, ``tip`` what to do next."""

    exit_code = 2

    def __init__(self, message: str, tip: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.tip = tip

    def __str__(self) -> str:
        return self.message if not self.tip else f"{self.message} (tip: {self.tip})"


class ConfigError(SidecarError):
    """A config key is unknown, missing or has a bad value. Nothing was submitted."""


class SlurmError(SidecarError):
    """A Slurm operation failed."""

    exit_code = 3


class RunDirError(SidecarError):
    """The run directory is missing, unreadable or damaged."""
