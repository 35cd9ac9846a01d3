"""A family rule, and the words the rule modules share."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.classify.model import Confidence, FailureClass, Role

T, P = FailureClass.TRANSIENT, FailureClass.PERMANENT
CAUSE, DEATH, SYMPTOM, CASCADE, CONTEXT = Role.CAUSE, Role.DEATH, Role.SYMPTOM, Role.CASCADE, Role.CONTEXT
HIGH, MEDIUM, LOW = Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW


@dataclass(frozen=True)
class FamilyRule:
    name: str  # "<family>.<rule>", what --explain prints and families.disabled names
    pattern: str  # RE2, searched in the whole line
    error_type: str
    failure_class: FailureClass
    role: Role = CAUSE
    confidence: Confidence = MEDIUM
    tip: str = ""
    beats_ignore: bool = False  # read where the presets ignore or the level says INFO: iteration lines, kernel stall reports


TIP_NODE = "restart excluding the node; if it repeats on other nodes, report it to the site"
TIP_CKPT = ("the checkpoint does not fit this model/config or cannot be read: check --load and the "
             "model arguments, or move the broken iteration aside and resume from an earlier one")
TIP_NAN = ("training diverged: resume from an earlier checkpoint with a lower learning rate or "
            "skip the bad data; a plain restart repeats it")

# Slurm's clients and daemons prefix their own lines; a rule about Slurm needs one of these.
# slurmstepd names its node since Slurm 21.08 ("slurmstepd-n2: error: ..."); the daemons' own
# log files start a line with an ISO time in brackets ("[2024-05-02T11:03:12.455] error: ...").
SLURM = (r"(?:(?:srun|sbatch|salloc|sbcast|slurmstepd(?:-[\w.-]+)?|slurmd|slurmctld|scontrol)(?:\[\d+\])?: (?:error|fatal|Error|FATAL)?:? ?"
          r"|\[\d{4}-\d\d-\d\dT[\d:.]+\] (?:error|fatal): )")
