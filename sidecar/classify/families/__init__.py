"""The family layer: a failure recognised by its structure and vocabulary, not its wording.

The curated signals of a preset know wordings that were seen. This layer runs behind them, on
lines no signal matched, and recognises failure families the way an operator does: by the
source's own vocabulary (a driver log line ``NVRM: ...``, NVML, ``mce: [Hardware Error]``,
EDAC, InfiniBand work-completion statuses, libfabric/UCX, c10d/TCPStore, Slurm's own clients)
and by structure (the final line of a Python traceback: its exception type and the family of
its message). Each rule says what it means (error_type, class), its role in an episode (cause,
death, symptom, cascade; see ``model.Role``), how sure it is, and a tip.

Cost: a line reaches this layer only when the cheap ``PREFILTER`` (one RE2 alternation of
error-looking words, run inside the streaming scan's single pass) marks it; everything else is
never touched by Python. ``BENIGN`` lines never fire: log levels below error (INFO, WARNING,
glog ``[W...]``), lines that say they retry, advice, traceback frames, normal shutdown.

One module per family of sources (``slurm``, ``launchers``, ``hardware``, ``transport``,
``collectives``, ``storage``, ``memory``, ``environment``, ``training``, ``cascade``), Python exceptions in
``exceptions``; ``layer`` puts the rules in their order. Rules are written from how these
systems fail (their sources and manuals), not from corpus lines; ``bench/eval_corpus.py``
measures the layer alone on labelled real lines.
"""

from sidecar.classify.families.benign import BENIGN
from sidecar.classify.families.exceptions import EXCEPTION_RULE, IGNORED_RULE, exception_family
from sidecar.classify.families.layer import RULES, FamilyLayer, family_hit
from sidecar.classify.families.prefilter import PREFILTER
from sidecar.classify.families.prefix import LINE_PREFIX, line_body
from sidecar.classify.families.rule import FamilyRule

__all__ = ["BENIGN", "EXCEPTION_RULE", "IGNORED_RULE", "LINE_PREFIX", "PREFILTER", "RULES", "FamilyLayer", "FamilyRule",
           "exception_family", "family_hit", "line_body"]
