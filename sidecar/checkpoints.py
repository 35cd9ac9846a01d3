"""Megatron-LM's checkpoint directory: ``latest_checkpointed_iteration.txt`` names the newest
complete checkpoint (``iter_0000100/``). Written last, atomically, so it is the truth on disk:
the watchdog reads it rather than trusting the last save line the sidecar happened to see
(a sidecar that ended mid-save recorded 40 while 60 had been written)."""

from __future__ import annotations

import os
from pathlib import Path

TRACKER = "latest_checkpointed_iteration.txt"


def read_tracker(checkpoint_dir: str | os.PathLike[str] | None) -> int | None:
    """The iteration of the newest complete checkpoint in ``checkpoint_dir``, or None."""
    if not checkpoint_dir:
        return None
    try:
        text = (Path(checkpoint_dir) / TRACKER).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
