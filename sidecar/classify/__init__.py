"""The failure classifier: which log lines mean which failure, and whether a job is hung.

``LineClassifier`` matches lines against the user's and the preset's signals (RE2, linear
time), then the family layer (``families``: failures by structure and vocabulary);
``RootCauseTracker`` picks the root cause of an episode by each line's role (cause, death,
symptom, cascade);
``ProgressTracker`` follows the steps and checkpoints of the log (a table of formats: Megatron-LM,
NeMo, torchtitan, DeepSpeed, Lightning, HF Trainer, fairseq, Composer, or the preset's own) and
detects hangs from the job's own pace. Presets live in ``sidecar/presets/monitoring/``.
"""

from sidecar.classify.classifier import LineClassifier
from sidecar.classify.config import load_monitoring, load_monitoring_preset
from sidecar.classify.model import (
    FailureClass,
    HangConfig,
    MonitoringConfig,
    Signal,
    SignalHit,
    Verdict,
)
from sidecar.classify.progress import ProgressTracker
from sidecar.classify.tracker import RootCauseTracker, classify_lines

__all__ = [
    "FailureClass",
    "HangConfig",
    "LineClassifier",
    "MonitoringConfig",
    "ProgressTracker",
    "RootCauseTracker",
    "Signal",
    "SignalHit",
    "Verdict",
    "classify_lines",
    "load_monitoring",
    "load_monitoring_preset",
]
