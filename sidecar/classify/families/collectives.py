"""Collectives, stores and sockets: NCCL, gloo, c10d/TCPStore, MPI, plain connections."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, LOW, MEDIUM, P, SYMPTOM, T

TIP_MISMATCH = "the ranks called collectives of different sizes or order: a bug in the code; a restart repeats it"

RULES: tuple[FamilyRule, ...] = (
    # --- collectives, stores, networks ----------------------------------------------------------
    # a call NCCL refused (ncclInvalidArgument/ncclInvalidUsage, "NCCL WARN Invalid ..."): before its result
    # codes, since torch wraps it as "NCCL error in: ..., invalid usage"
    FamilyRule("nccl.mismatch", r"NCCL WARN .*[Mm]essage truncated",
               "nccl_config", P, CAUSE, MEDIUM, TIP_MISMATCH),
    FamilyRule("nccl.config", r"has already checked in|Duplicate GPU detected",
               "nccl_config", P, CAUSE, MEDIUM, "two processes claim the same rank or GPU: check the launcher's rank/GPU mapping"),
    FamilyRule("nccl.usage", r"NCCL WARN Invalid|NCCL WARN .*\binvalid (?:cudaDev|rank|device|value|argument)|\bncclInvalid(?:Argument|Usage)\b|\bnccl[A-Z]\w+(?:\([^)]*\))? failed: invalid (?:argument|usage)|NCCL (?:[Ee]rror|ERROR)\b.{0,100}\binvalid (?:usage|argument)\b|unknown NCCL_|invalid usage",
               "nccl_config", P, CAUSE, MEDIUM, "NCCL refused a call (an invalid argument, or the ranks set up differently): a bug or a config error; a restart repeats it"),
    FamilyRule("nccl.interface", r"(?:NCCL WARN .*|Bootstrap ?: |NET/\w+ ?: )\b(?:no socket interface|no \w+ interface found)",
               "nccl_config", P, CAUSE, MEDIUM, "NCCL found no network interface to use: check NCCL_SOCKET_IFNAME (and NCCL_IB_HCA) against the nodes' interfaces"),
    FamilyRule("nccl.result", r"\bnccl(?:System|Internal|Remote|UnhandledCuda)Error\b|\bNCCL (?:[Ee]rror|ERROR)\b|\bNCCL (?:failure|timeout)\b"
                            # ncclGetErrorString()'s words after the failed call (Horovod, JAX, NCCL's own tests)
                            r"|\bnccl[A-Z]\w+(?:\([^)]*\))? failed: (?:unhandled (?:system|cuda) error|internal error|remote process exited|.*network error)"
                            # the proxy thread's failure as torch repeats it after "Last error:" (NCCL's own WARN of it is its trace)
                            r"|\bProxy Call to rank \d+ failed\b",
               "nccl", T, CAUSE, MEDIUM, "NCCL failed (a peer, the network or the GPU); restart"),
    # torch's monitoredBarrier on a healthy rank: it names the faulty rank, whose own lines are the cause
    FamilyRule("hang.barrier_peer", r"reached \w*[Bb]arrier\w*,? but received errors|check rank \d+ logs for (?:the )?faulty rank",
               "hang", T, SYMPTOM, MEDIUM, "a healthy rank reporting another rank that failed or hung: see that rank's lines"),
    FamilyRule("hang.watchdog", r"(?i)no heartbeat|failed to pass \w*barrier|\w*barrier\w* .{0,40}(?:timed? ?out|timeout)|heartbeat (?:monitor )?timed? ?out|watchdog (?:got )?stuck|watchdog hang|collective operation timeout|hang detected|deadlock detected",
               "hang", T, CAUSE, MEDIUM, "a collective or the process hung; restart"),
    # ProcessGroupNCCL's watchdog reports around its timeout line, by sequence number (torch 2.0-2.6: "Timeout at NCCL
    # work: N", 2.4+ "Exception (either an error or timeout) detected by watchdog at work: N", the dump-signal notice)
    FamilyRule("hang.watchdog_report", r"\b(?:Timeout at|detected by watchdog at) NCCL work: \d+|detected by watchdog at work: \d+|dump signal due to a collective timeout",
               "hang", T, SYMPTOM, MEDIUM, "c10d's watchdog saw a collective fail or time out; the line naming the collective (or a peer's failure) is the cause"),
    FamilyRule("gloo.transport", r"enforce fail at \S*gloo/transport|gloo/transport/\S+\] .*(?i:error|fail|closed)",
               "network", T, SYMPTOM, LOW, "gloo's transport to a peer broke (usually the peer died: see the other ranks)"),
    FamilyRule("gloo.timeout", r"(?i)gloo.*(?:timed out|timeout|connectFullMesh failed)|Application timeout caused pair closure",
               "hang", T, CAUSE, MEDIUM, "a peer stopped answering (hung or stopped process); restart"),
    FamilyRule("net.peer_closed", r"(?i)Connection closed by (?:remote )?peer|closed by remote|Connection was likely closed|remote end closed|EOF occurred|peer (?:closed|shut down|hung up)|peer process has unexpectedly disconnected",
               "peer_lost", T, SYMPTOM, MEDIUM, "a peer process went away: its own failure is the cause (see the other ranks)"),
    # torch.distributed's init_method that the environment does not complete (env://, tcp://): a launch config error
    FamilyRule("store.config", r"environment variable \w+ expected, but not set|rendezvous: port number missing|\brdzv_endpoint\b.{0,40}\b(?:invalid|not a valid)|[Ii]nvalid (?:rendezvous|rdzv) (?:endpoint|backend|configuration)",
               "config_error", P, CAUSE, MEDIUM, "the launcher's rendezvous settings are incomplete (MASTER_ADDR/MASTER_PORT, --rdzv-endpoint): fix the launch command"),
    # TCPStore's protocol checks name no store: a reply cut off because the master's store went away
    FamilyRule("store.c10d", r"(?i)TCPStore|\[c10d\]|c10d[/:]|c10d (?:store|rendezvous|key-value)|[Rr]endezvous|DistStoreError|DistNetworkError|store->get|TCPServer|key-value store"
                           r"|\bStop_waiting response is expected",
               "store", T, SYMPTOM, LOW, "the rendezvous/store master is unreachable: it ended (see other lines) or the network failed"),
    FamilyRule("net.mpi", r"MPI_ERR_\w+|RETRY EXCEEDED|retry count .{0,60}exceeded|error polling \w+ CQ|[OP]RTE does not know how to route|[OP]RTE has lost|PMIX ERROR: (?:UNREACH\w*|TIMEOUT|LOST[-_ ]CONNECTION\S*|COMMUNICATION\S*)|PMIX_ERR_(?:UNREACH|TIMEOUT|LOST_\w+|COMM\w*)|\bpmixp_\w+.*(?:timeout|failed|[Cc]annot connect)|MPICH ERROR|Fatal error in P?MPI_\w+|An error occurred in MPI_\w+|ORTE has lost communication|lost (?:communication|connection) with (?:a|the) (?:remote )?(?:daemon|process)"
               # Open MPI's help texts open with what broke; Intel MPI's hydra names its socket call
               r"|unable to complete a TCP connection|retry count between two MPI processes has been exceeded"
               r"|unable to reliably start one or more daemons|(?:failed|unable) to create a queue pair|\bHYD\w*_sock_\w+ \(\S+\): .*(?:error|failed)"
               # an Open MPI component's own error print ("pml_ucx.c:178  Error: ...")
               r"|\b(?:pml|osc|mtl|btl|coll)_\w+\.c:\d+\s+Error: ",
               "network", T, CAUSE, LOW, "MPI reported a communication error; restart"),
    # an MPI built or linked without what the job asks of it (Cray MPICH's GPU transport layer, Open MPI without Slurm's PMI)
    FamilyRule("mpi.build", r"GTL library is not linked|MPIDI_CRAY_init: \w+ is requested, but|not built with SLURM.s PMI support|not built with (?:Slurm|SLURM) PMI",
               "env_error", P, CAUSE, MEDIUM, "the MPI library does not support what the job asks (GPU-aware MPI, srun's PMI): load the matching MPI module or rebuild it"),
    FamilyRule("nccl.warn", r"[NR]CCL WARN .*(?i:error|fail|timeout|abort|unable|fatal)|\bncclInvalidUsage\b|NCCL (?:failure|timeout)",
               "nccl", T, CAUSE, LOW, "NCCL reported an error; restart"),
    FamilyRule("net.socket", r"(?i)Connection (?:reset by peer|refused|timed out|aborted)|No route to host|Network is unreachable|Software caused connection abort|Broken pipe|Socket Timeout|socket timed out|Name or service not known|Address already in use|\bEADDRINUSE\b|Temporary failure in name resolution|\[Errno (?:104|110|111|113|101|32)\]"
               # the resolver's words (getaddrinfo's EAI_* and gai_strerror(), curl, ssh, urllib3, musl, Go's net package)
               r"|\bEAI_(?:AGAIN|FAIL|NONAME|NODATA|SYSTEM)\b|getaddrinfo(?:\(\))? (?:failed|error)|Could not resolve (?:hostname|proxy)\b|Failed to resolve '|No address associated with hostname|Name does not resolve|nodename nor servname provided|\blookup \S+ on \S+: (?:server misbehaving|no such host)"
               r"|(?:Destination|Host|Network) (?:is )?unreachable|Network is down|Host is down",
               "network", T, SYMPTOM, LOW, "a network connection failed; restart"),
    # gRPC/absl status codes of a remote call (JAX's coordination service, Ray, TPU runtimes): the peer or service is gone
    FamilyRule("net.rpc_status", r"\b(?:UNAVAILABLE|DEADLINE_EXCEEDED): |StatusCode\.(?:UNAVAILABLE|DEADLINE_EXCEEDED)\b",
               "network", T, SYMPTOM, LOW, "a remote call failed (the service or a peer is gone, or the network); restart"),
    # curl's error codes (libcurl's CURLE_* as s3fs-fuse logs them, the curl tool's "curl: (N)") of a transfer that broke off
    FamilyRule("net.curl", r"\bCURLE_(?:COULDNT_(?:CONNECT|RESOLVE_\w+)|OPERATION_TIMEDOUT|SEND_ERROR|RECV_ERROR|SSL_CONNECT_ERROR|GOT_NOTHING|PARTIAL_FILE|HTTP2\w*)\b|\bcurl: \((?:5|6|7|18|28|35|52|55|56|92)\) ",
               "network", T, CAUSE, MEDIUM, "a download or upload broke off (network, DNS or the server); restart"),

)
