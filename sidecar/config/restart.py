"""The restart policy settings (``restart:`` in a run config; presets in sidecar/presets/restart/).

The watchdog's pure decision (sidecar.policy) reads these; every field says what it changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.config.validate import field

ERROR_TYPE = r"[a-z][a-z0-9_]*"


@dataclass(frozen=True)
class RestartPolicy:
    """When a failed attempt is restarted, and when the run stops."""

    preset: str = field("custom", help="the restart preset this was built from")
    max_retries: int = field(3, min=0, help="restarts allowed for failures (the budget); "
                             "attempt max_retries+1 failing stops the run")
    exclude_error_types: tuple[str, ...] = field(
        default_factory=tuple, pattern=ERROR_TYPE, pattern_help="an error type (lower_snake_case)",
        help="error types that stop the run instead of restarting it (a restart would repeat them)")
    backoff_s: float = field(0.0, min=0, help="seconds to wait before a restart; doubles with "
                             "each consecutive failure, up to backoff_max_s")
    backoff_max_s: float = field(600.0, min=0, help="upper bound of the backoff, seconds")
    timeouts_use_budget: bool = field(False, help="whether a wall-time TIMEOUT counts against "
                                      "max_retries (by default it continues from the checkpoint)")
    max_timeout_restarts: int = field(100, min=0, help="continuations after TIMEOUT allowed, "
                                      "a safety net against a job that never makes progress")
    exclude_failed_nodes: bool = field(True, help="resubmit with --exclude of the node(s) that "
                                       "failed (NODE_FAIL, a GPU/ECC error on a named node)")
    max_excluded_nodes: int = field(8, min=0, help="how many failed nodes a run keeps excluding "
                                    "(the most recent ones): a small partition must stay schedulable")
    stop_on_repeat_without_progress: bool = field(
        True, help="stop early when the same failure repeats with no training progress between")
    restart_on_unknown: bool = field(True, help="restart (within budget) a failure nothing classified")
    restart_on_cancel: bool = field(True, help="restart (within budget) a job cancelled by hand "
                                    "(scancel) without a STOP request; `autoexp-sidecar stop` never restarts")
    fast_path: bool = field(True, help="the dying job decides and submits its successor itself "
                            "(and cancels its own watchdog) when its batch script is still alive; "
                            "the watchdog then only handles node death, a scancel of the whole job, "
                            "a time-limit kill or a killed batch script")
    in_allocation: bool = field(False, help="restart a transient fault not tied to a node "
                                "(in_allocation_error_types) inside the same allocation: the "
                                "batch script starts the training again after the sidecar ended "
                                "it, with the same budget and history; node faults and a failure "
                                "that repeats without progress leave the allocation (a new job)")
    in_allocation_error_types: tuple[str, ...] = field(
        ("nccl", "nccl_timeout", "hang", "elastic", "store", "store_timeout", "abort", "unknown"),
        pattern=ERROR_TYPE, pattern_help="an error type (lower_snake_case)",
        help="error types restarted inside the allocation when in_allocation is on")
