"""Consequences that name words of a cause, and process deaths launchers report (facts about one rank).

These come first in the rule order: a line that is both ("Received SIGTERM ... NCCL") is the consequence.
"""

from __future__ import annotations

from sidecar.classify.families.rule import CASCADE, CONTEXT, DEATH, FamilyRule, HIGH, LOW, MEDIUM, SLURM, T

# torch elastic's agent restarting its worker group (--max-restarts): the tracker starts a new episode
GROUP_RESTART_RULE = "launcher.group_restart"

CASCADE_RULES: tuple[FamilyRule, ...] = (
    # --- cascade first: consequences that name words of a cause ------------------------------
    FamilyRule(GROUP_RESTART_RULE, r"attempts left; will restart worker group", "restart", T, CONTEXT, HIGH,
               "the launcher restarted its workers: the failure before it was recovered", beats_ignore=True),
    # Python's report of an exception it ignored (a destructor, a callback): the traceback that
    # follows ends in an exception line, which the tracker takes as part of it (IGNORED_RULE)
    FamilyRule("python.exception_ignored", r"Exception ignored (?:in|on|while)\b", "ignored", T, CONTEXT, HIGH,
               "Python printed an exception it ignored (an object's destructor or a callback): not a failure"),
    FamilyRule("gpu.xid_after_previous", r"caused by previous Xid|NVRM: Xid \([^)]*\): 45\b",
               "gpu_hw", T, CASCADE, LOW, "Xid 45 is the driver's clean-up after another Xid or a killed process"),
    FamilyRule("net.ib_flush", r"IBV_WC_WR_FLUSH_ERR|Work Request Flushed|with status=5 |WR_FLUSH_ERR",
               "nccl", T, CASCADE, MEDIUM, "flushed work requests follow the queue pair's first error"),
    FamilyRule("nccl.trace", r"NCCL WARN .*(?:-> ?\d+\b|retcode \d+|Failed to execute operation|closing connection|\[Proxy|Proxy thread error|outstanding requests)|Socket recv failed while polling for opId",
               "nccl", T, CASCADE, MEDIUM, "NCCL's error trace after the first failing call"),
    FamilyRule("slurm.task_exit_report", SLURM + r".*(?:Failed to send MESSAGE_TASK_EXIT|DUE TO TASK FAILURE|\*\*\* (?:STEP|JOB) \S+ (?:ON \S+ )?CANCELLED(?: AT \S+)? \*\*\*)",
               "slurm", T, CASCADE, MEDIUM, "Slurm ending the rest of a step after one task failed"),
    FamilyRule("nccl.aborted", r"[Cc]ommunicator (?:was )?aborted|ncclCommAbort|Abort COMPLETE|aborted by another (?:rank|process)",
               "nccl", T, CASCADE, MEDIUM, "NCCL aborting a communicator after an error reported elsewhere"),
    # Ray's RayTaskError(<type>) carries the task's own exception: a known type is read by the
    # exception reader (exceptions.py), a generic one (RuntimeError, Exception) stays the wrapper
    FamilyRule("launcher.actor_died", r"ActorDiedError|RayTaskError(?:[^(]|$|\((?:RuntimeError|Exception|Ray\w*|\w*Died\w*|\w*Crashed\w*)\))|actor died unexpectedly|Killing subprocess \d+|Bypassing SIG|[Rr]eceived SIGTERM|terminate called",
               "abort", T, CASCADE, MEDIUM, "a launcher stopping workers after another failure"),

)

DEATH_RULES: tuple[FamilyRule, ...] = (
    # --- process deaths reported by launchers and shells: facts about one rank ----------------
    FamilyRule("death.sigkill", r"exitcode\s*:\s*-9\b|[Ss]ignal 9 \(SIGKILL\)|return ?code ?[=:]? ?-9\b|exit (?:code|status) (?:-9|137)\b|: line \d+: +\d+ Killed\b|^(?:\d+: ?)?Killed$|killed by signal:? (?:Killed|SIGKILL|9)\b|(?:terminated|killed) with signal (?:SIGKILL|9)\b|(?:exited|terminated) on signal 9\b|<Signals\.SIGKILL: 9>|terminated with (?:exit )?code -9\b",
               "killed", T, DEATH, LOW,
               "a process was SIGKILLed: by the kernel's OOM killer (check `dmesg`/sacct MaxRSS), "
               "an admin, or a health check"),
    FamilyRule("death.crash", r"exitcode\s*:\s*-(?:11|7)\b|Signal: (?:Segmentation fault|Bus error) \(\d+\)|Signal (?:11|7) \(SIG(?:SEGV|BUS)\)|[Ss]egmentation fault|\bSIGSEGV\b|task \d+: Bus error|killed by signal:? (?:Segmentation fault|Bus error|SIGSEGV|SIGBUS)|: line \d+: +\d+ Bus error|(?:exited|terminated) on signal (?:7|11)\b|<Signals\.SIG(?:SEGV|BUS): \d+>",
               "crashed", T, DEATH, LOW, "a native crash; if it repeats at the same step it is a code or library bug"),

)
