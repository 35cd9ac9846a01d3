"""Collectives, stores and sockets: NCCL, gloo, c10d/TCPStore, MPI, plain connections."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, LOW, MEDIUM, P, SYMPTOM, T

RULES: tuple[FamilyRule, ...] = (
    # --- collectives, stores, networks ----------------------------------------------------------
    FamilyRule("nccl.result", r"\bnccl(?:System|Internal|Remote|UnhandledCuda)Error\b|\bNCCL (?:[Ee]rror|ERROR)\b|\bNCCL (?:failure|timeout)\b",
               "nccl", T, CAUSE, MEDIUM, "NCCL failed (a peer, the network or the GPU); restart"),
    FamilyRule("nccl.mismatch", r"NCCL WARN .*[Mm]essage truncated",
               "nccl_config", P, CAUSE, MEDIUM, "the ranks called collectives of different sizes or order: a bug in the code; a restart repeats it"),
    FamilyRule("nccl.config", r"has already checked in|Duplicate GPU detected|NCCL WARN Invalid|NCCL WARN .*\b(?:invalid (?:cudaDev|rank|device|value|argument)|no socket interface|no \w+ interface found)|\bncclInvalidArgument\b|NCCL Error \d+: invalid (?:usage|argument)|unknown NCCL_|invalid usage|ncclInvalidUsage",
               "nccl_config", P, CAUSE, MEDIUM, "two processes claim the same rank or GPU: check the launcher's rank/GPU mapping"),
    # torch's monitoredBarrier on a healthy rank: it names the faulty rank, whose own lines are the cause
    FamilyRule("hang.barrier_peer", r"reached \w*[Bb]arrier\w*,? but received errors|check rank \d+ logs for (?:the )?faulty rank",
               "hang", T, SYMPTOM, MEDIUM, "a healthy rank reporting another rank that failed or hung: see that rank's lines"),
    FamilyRule("hang.watchdog", r"(?i)no heartbeat|failed to pass \w*barrier|\w*barrier\w* .{0,40}(?:timed? ?out|timeout)|heartbeat (?:monitor )?timed? ?out|watchdog (?:got )?stuck|watchdog hang|collective operation timeout|hang detected|deadlock detected",
               "hang", T, CAUSE, MEDIUM, "a collective or the process hung; restart"),
    FamilyRule("gloo.transport", r"enforce fail at \S*gloo/transport|gloo/transport/\S+\] .*(?i:error|fail|closed)",
               "network", T, SYMPTOM, LOW, "gloo's transport to a peer broke (usually the peer died: see the other ranks)"),
    FamilyRule("gloo.timeout", r"(?i)gloo.*(?:timed out|timeout|connectFullMesh failed)|Application timeout caused pair closure",
               "hang", T, CAUSE, MEDIUM, "a peer stopped answering (hung or stopped process); restart"),
    FamilyRule("net.peer_closed", r"(?i)Connection closed by (?:remote )?peer|closed by remote|Connection was likely closed|remote end closed|EOF occurred|peer (?:closed|shut down|hung up)",
               "peer_lost", T, SYMPTOM, MEDIUM, "a peer process went away: its own failure is the cause (see the other ranks)"),
    FamilyRule("store.c10d", r"(?i)TCPStore|\[c10d\]|c10d[/:]|c10d (?:store|rendezvous|key-value)|[Rr]endezvous|DistStoreError|DistNetworkError|store->get|TCPServer|key-value store",
               "store", T, SYMPTOM, LOW, "the rendezvous/store master is unreachable: it ended (see other lines) or the network failed"),
    FamilyRule("net.mpi", r"MPI_ERR_\w+|RETRY EXCEEDED|retry count .{0,60}exceeded|error polling \w+ CQ|[OP]RTE does not know how to route|[OP]RTE has lost|PMIX ERROR: (?:UNREACH\w*|TIMEOUT|LOST[-_ ]CONNECTION\S*|COMMUNICATION\S*)|PMIX_ERR_(?:UNREACH|TIMEOUT|LOST_\w+|COMM\w*)|\bpmixp_\w+.*(?:timeout|failed|[Cc]annot connect)|MPICH ERROR|Fatal error in P?MPI_\w+|An error occurred in MPI_\w+|MPI_ABORT was invoked|ORTE has lost communication|lost (?:communication|connection) with (?:a|the) (?:remote )?(?:daemon|process)",
               "network", T, CAUSE, LOW, "MPI reported a communication error; restart"),
    FamilyRule("nccl.warn", r"[NR]CCL WARN .*(?i:error|fail|timeout|abort|unable|fatal)|\bncclInvalidUsage\b|NCCL (?:failure|timeout)",
               "nccl", T, CAUSE, LOW, "NCCL reported an error; restart"),
    FamilyRule("net.socket", r"(?i)Connection (?:reset by peer|refused|timed out|aborted)|No route to host|Network is unreachable|Software caused connection abort|Broken pipe|Socket Timeout|socket timed out|Name or service not known|Address already in use|\bEADDRINUSE\b|Temporary failure in name resolution|\[Errno (?:104|110|111|113|101|32)\]"
               # a client giving up on its server (Ray's "Failed to connect to GCS within 60 seconds")
               r"|[Ff]ailed to connect to \S+ within \d+ s",
               "network", T, SYMPTOM, LOW, "a network connection failed; restart"),

)
