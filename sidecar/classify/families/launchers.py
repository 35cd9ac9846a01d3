"""Launchers of ranks by their own runtime's messages: MPI (Open MPI/PRRTE, MPICH/Hydra, Intel MPI, Cray MPICH), Ray, Horovod.

A launcher reports three kinds of things: that it could not start the job as configured (a
program it cannot find, a process manager it cannot talk to: permanent), that its daemons on
the nodes could not start or died (transient, a node's fault), and that it ends the job after one
rank failed (cascade: the rank's own lines say why).
"""

from __future__ import annotations

from sidecar.classify.families.rule import CASCADE, CAUSE, DEATH, FamilyRule, LOW, MEDIUM, P, T

CASCADE_RULES: tuple[FamilyRule, ...] = (
    # Open MPI's and Hydra's help texts after a rank exited, and Horovod's after an exception on
    # one rank: printed after the failing rank's own lines
    FamilyRule("launcher.job_aborted", r"MPI_ABORT was invoked on rank|[Pp]rimary job +terminated normally, but \d+ process(?:es)? returned"
               r"|(?:mpirun|prterun|mpiexec) detected that one or more processes exited with non-zero status|one of the processes terminated badly"
               r"|BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES|Horovod detected that one or more processes exited|Horovod has been shut down",
               "abort", T, CASCADE, MEDIUM, "the launcher ends the job after one rank failed: that rank's own lines say why"),
)

RULES: tuple[FamilyRule, ...] = (
    # the process manager's runtime cannot start the job as configured: the same on every node
    FamilyRule("mpi.config", r"not enough slots available|(?:could not|unable to) (?:access or )?execute an executable|unable to launch the specified application"
               r"|(?:requested|asked for) more (?:processes|slots|ranks) than|was unable to find the specified executable|binding more processes than cpus"
               # Hydra (MPICH, Intel MPI) starting the program; Intel MPI without Slurm's PMI library
               r"|execvp error on file \S+ \((?:No such file|Permission denied)|PMI server not found|I_MPI_PMI_LIBRARY\S* .*(?:not found|cannot|invalid)"
               # Open MPI's openib without locked memory (ulimit -l); Cray MPICH's GTL is collectives' mpi.build
               r"|allocate some locked memory|memlock limits? (?:are|is) (?:set )?too low"
               # libfabric found no provider for what the MPI was told to use (FI_PROVIDER, the NIC type)
               r"|OFI (?:addr|get)info\(\) failed|system-required executable either could not be found"
               # Open MPI direct-launched by srun without the PMI it expects (srun --mpi=pmix; a build without
               # Slurm's PMI is collectives' mpi.build)
               r"|OPAL ERROR: (?:Not initialized|Unreachable|Error) in file \S*_client\.c"
               # the launchers' command lines: Open MPI/PRRTE's own option parser, Hydra's (match_arg), a host file
               r"|\b(?:mpirun|mpiexec|orterun|prterun|prte|oshrun): Error: unknown option|\bAn invalid value was given for"
               r"|\bmatch_arg \([^)]*\): unrecognized argument|\bunable to open host file\b|\bHYD_uii_\w+ \([^)]*\): error parsing",
               "config_error", P, CAUSE, MEDIUM, "the MPI launcher cannot start the job as configured: check the program path, the processes per node, the PMI/provider settings and ulimits"),
    # MPI's error classes for a call the program made wrongly: the same call fails again (before
    # collectives' net.mpi, which reads the other MPI_ERR_ classes as transport errors)
    FamilyRule("mpi.usage", r"\bMPI_ERR_(?:TRUNCATE|COMM|ARG|RANK|TAG|COUNT|TYPE|BUFFER|ROOT|GROUP|OP|DIMS|TOPOLOGY|REQUEST|KEYVAL|NOT_SAME|ASSERT|WIN|DISP|SIZE|LOCKTYPE|RMA_\w+|INFO\w*)\b",
               "code_error", P, CAUSE, MEDIUM, "an MPI call was made with wrong arguments (sizes, ranks, communicators): a bug in the program; a restart repeats it"),
    # a launcher's daemons on the nodes (orted/prted, Hydra's proxies) could not start or died
    # (Open MPI's "unable to reliably start one or more daemons" is collectives' net.mpi)
    FamilyRule("mpi.daemon", r"\b(?:ORTE|PRTE|PRRTE) daemon has unexpectedly failed|\bUnable to run bstrap_proxy on \S+"
               r"|\bHYDT_bscd?\w* \([^)]*\): (?:launcher returned error|unable to|failed)|\bHYD_bstrap_setup \([^)]*\): error|unable to get host address for \S+"
               # the runtime's own error log and help text: a message to a daemon that never came back
               r"|\b(?:ORTE|PRTE|PRRTE|OPAL)_ERROR_LOG: (?:Timeout|Unreachable|Lost connection|Communication failure)\b|A request has timed out and will therefore fail",
               "node_failure", T, CAUSE, MEDIUM, "the MPI launcher could not start or lost its daemon on a node; restart excluding the node if the line names one"),
    # Ray: a node the head stopped hearing from, a head (GCS) that is gone, workers that never registered
    FamilyRule("ray.node", r"has been marked dead because the detector has missed too many heartbeats|[Rr]aylet (?:process )?(?:has )?(?:died|crashed|exited (?:unexpectedly|immediately))"
               # objects whose every copy was on a node that died
               r"|(?:have been|has been|was|were) lost due to (?:node|worker|owner) failure|\bray\.exceptions\.(?:ObjectLostError|OwnerDiedError|NodeDiedError)\b",
               "node_failure", T, CAUSE, MEDIUM, "a Ray node died or stopped answering; restart excluding it"),
    FamilyRule("ray.cluster", r"Failed to connect to GCS|\bray\.exceptions\.(?:RaySystemError|ActorUnavailableError|GetTimeoutError)\b|head node address|[Aa]ctor is (?:temporarily )?unavailable|GCS (?:may have been killed|has (?:died|been killed|crashed))|have not registered within the timeout|[Uu]nable to register worker with raylet|Failed to register worker",
               "network", T, CAUSE, MEDIUM, "the Ray cluster's head (GCS) or a raylet could not be reached; restart"),
    FamilyRule("ray.worker_died", r"[Ww]orker died or was killed while executing|[Ww]orker (?:process )?(?:has )?died unexpectedly",
               "crashed", T, DEATH, LOW, "a Ray worker process died: its own lines (or the kernel's OOM killer) say why"),
)
