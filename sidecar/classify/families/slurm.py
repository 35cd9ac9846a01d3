"""Slurm's own errors by family, and the remote shells (pdsh/ssh) that start ranks for other launchers."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, LOW, MEDIUM, P, SLURM, T

# A request refused is a client's report (srun, sbatch, salloc, sbcast, scontrol); the daemons' words of
# refusal ("Not Supported" from a GPU query, "Operation not permitted" from the kernel) are the node's.
SLURM_CLIENT = r"\b(?:srun|sbatch|salloc|sbcast|scontrol)(?:\[\d+\])?: (?:error|fatal|Error|FATAL)?:? ?"

RULES: tuple[FamilyRule, ...] = (
    # --- Slurm's own errors by family -----------------------------------------------------------
    FamilyRule("slurm.script_missing", SLURM + r".*execve\(\): \S*slurm_script: No such file",
               "node_failure", T, CAUSE, MEDIUM, "the batch script vanished from the node's spool: a node problem; restart excluding it"),
    FamilyRule("slurm.executable_missing", SLURM + r".*(?:execve\(\): \S+: (?:No such file|Permission denied)|Unable to find executable|command not found)",
               "env_error", P, CAUSE, MEDIUM, "the program is not on PATH on the compute nodes: load its module or environment in the job script"),
    FamilyRule("slurm.step_refused", SLURM + r".*(?i:CPU binding outside|(?:cpu|gpu|mem)[ _-]?bind request|Unable to satisfy|invalid (?:cpu|gpu|mem)[ _-]?bind)",
               "config_error", P, CAUSE, MEDIUM, "Slurm cannot place the tasks as asked: fix the binding/tasks per node in the config"),
    FamilyRule("slurm.node_setup", SLURM + r".*(?:unable to create cgroup|Failed to invoke task plugins|task_[pg]_pre_setuid|(?:cgroup|task) plugin failure|Failed to create job container|\b[a-z]+_[pg]_[a-z_]+: .*(?:[Ff]ail|[Uu]nable|giving up)"
               r"|\b(?:job_container|task|proctrack|jobacct_gather|prep|switch|namespace)/\w+: .*(?:[Ff]ail|[Uu]nable|giving up)"
               # EAGAIN from a daemon: the node ran out of processes or threads
               r"|_forkexec_slurmstepd|slurmstepd failed|Resource temporarily unavailable"
               # cgroup v2's device filter: the node's kernel refused the eBPF program (its memlock limit)
               r"|load_ebpf_prog|BPF load error)",
               "node_failure", T, CAUSE, MEDIUM, "Slurm could not set up the step on this node (cgroups, task plugins): a node problem; restart excluding it"),
    FamilyRule("slurm.step_launch", SLURM + r".*(?:Task launch for \S+ failed on node|timeout waiting for task launch|io error with slurmstepd|task \d+ launch failed|Slurmd could not (?:connect|execve|set up)|Job credential expired|Unable to create step for job \d+: (?:Socket|Connection|Communication|Zero Bytes|Job/step already|Job credential|Error generating job credential|Required node not available|Node\(s\) in the allocation are down|Nodes? \S+ (?:is|are) down))",
               "node_failure", T, CAUSE, MEDIUM, "a step could not start on one node; restart excluding it"),
    FamilyRule("slurm.comm", SLURM + r".*(?:Socket timed out|Unable to contact slurm controller|Connection (?:refused|timed out|reset)|Communication connection failure|Zero Bytes were transmitted|slurm_receive_msgs?\b.*failed|Protocol authentication error|Transport endpoint|Unable to establish|Slurmctld.*not responding|lost connection|Node failure|can't find address for host|Unable to resolve|[Hh]ost name lookup failure|fwd_tree_thread|forward_thread|missing socket error|slurm_(?:bufs_sendto|msg_sendto|send_node_msg|send_recv_\w+)\b.*(?:failed|error))",
               "slurm_controller", T, CAUSE, MEDIUM, "lost contact with the controller or a node; transient"),
    # srun --mpi=<type> naming a plugin the site did not build or cannot load (before mpi_plugin:
    # "Cannot create context"); only a client's line: slurmd and slurmctld load every MPI plugin at
    # start and log the ones that fail to their own logs, harmlessly (seen on Slurm 22.05: pmix_v4)
    FamilyRule("slurm.mpi_type", SLURM_CLIENT + r".*(?:Couldn't (?:find|load)(?: the)? specified plugin name for mpi/|cannot find mpi plugin for|MPI: (?:Cannot create context for|Unable to load any plugin)|Invalid MPI type\b|can not load PMIx library)",
               "config_error", P, CAUSE, MEDIUM, "this Slurm has no such MPI plugin: `srun --mpi=list` shows the ones it has; fix the MPI type in the config"),
    # Slurm's MPI plugins (PMI-2, PMIx) exchange the ranks' addresses between the nodes' stepds
    FamilyRule("slurm.mpi_plugin", SLURM + r".*\bmpi/(?:pmi2?|pmix\w*|cray_shasta)\b.*(?:[Ff]ail|[Cc]annot|[Uu]nable|[Tt]imed? ?out|timeout)",
               "network", T, CAUSE, MEDIUM, "Slurm's MPI plugin lost contact between the nodes of the step; restart"),
    # slurm_strerror()'s own texts identify Slurm's errors whatever prints them
    FamilyRule("slurm.controller", r"Unable to contact slurm controller|Slurmctld (?:is )?not responding|Slurm backup controller in standby",
               "slurm_controller", T, CAUSE, MEDIUM, "lost contact with the controller; transient"),
    # systemd on the node: a daemon the jobs need died or failed
    FamilyRule("slurm.node_service", r"\b(?:slurmd|slurmstepd|munge|nvidia-fabricmanager|nv-fabricmanager|nvidia-persistenced|nvidia-dcgm)\S*\.service: (?:Main process exited, code=(?:killed|dumped|exited, status=[1-9])|Failed with result)",
               "node_failure", T, CAUSE, MEDIUM, "a daemon of the node (slurmd, munge, the GPU fabric manager) died; restart excluding the node"),
    FamilyRule("slurm.node", r"DUE TO NODE FAIL|Nodes? \S+ (?:are|is) still not ready|wrong with the boot of the nodes?|(?i:\bNHC\b.*(?:ERROR|fail)|health ?check (?:failed|failure|error))|Node failure on|NODE_FAIL|Nodes? \S+ not responding|not responding, setting DOWN|Communication connection failure|Zero Bytes were transmitted or received|Kill task failed|Job credential expired|Invalid job credential|(?i:munge\w* (?:decode|encode) failed|\bmunge\w*: .*(?:error|fail))|(?i:(?:prolog|epilog) (?:poll )?(?:failed|error|timeout|timed out)|error running slurm (?:prolog|epilog))"
               # scontrol show node: a reason Slurm set itself, or a state that takes the node out
               r"|\bReason=(?:Not responding|Kill task failed|NHC|[Hh]ealth)|\bState=\S*(?:DOWN|NOT_RESPONDING|FAIL)\S*",
               "node_failure", T, CAUSE, MEDIUM, "a node of the step failed or lost contact; restart excluding it"),
    # slurm_strerror()'s texts for an allocation that cannot start now (srun --immediate, a node
    # the site took away): the same request succeeds later or elsewhere (before slurm.refused)
    FamilyRule("slurm.busy", SLURM + r".*Unable to allocate resources: (?:Requested nodes are busy|Required node not available|Nodes required for job are DOWN)",
               "slurm_controller", T, CAUSE, MEDIUM, "Slurm cannot allocate the nodes now (busy, down or drained); retried on restart"),
    FamilyRule("slurm.refused", SLURM_CLIENT + r".*(?i:invalid .{0,40}specification|invalid [\w-]+ (?:option|value|name|request|argument)|mutually exclusive|are incompatible|not a valid .{0,40}specification|\bis invalid\b|invalid --[\w-]+|invalid (?:partition|account|qos|generic resource|gres|feature|node ?name|job array|time limit|user|wckey|reservation|license|constraint|node count|cpu count|directive)|invalid (?:number|value|count) (?:of|for) |Requested node configuration is not available|Node count specification invalid|More processors requested than permitted|Job violates accounting|(?:QOS|Assoc)(?:Grp|Max)\w*|MaxWall|(?:error|failed): .*partition configuration not available|(?:supported|submit|site) policy|not supported|unsupported|Memory required by task is not available|can ?not be satisfied|unrecognized option|unknown option|invalid option|Only allocated \d+ \w+ asked for|exceeds? (?:the )?(?:job |step )?allocation|Unable to allocate resources|Batch job submission failed|Access/permission denied|not allowed|Invalid account|must specify|must be specified|cannot be (?:larger|smaller|greater|less) than|cannot exceed|not permitted|Unable to create step for job|het(?:erogeneous)?[ -]?(?:group|job component)s? .*(?:but the job allocation|invalid|out of range)|Can't open \S+: No such file)",
               "config_error", P, CAUSE, MEDIUM, "Slurm refuses this request: fix the partition/account/QOS/gres/node count in the config"),

    FamilyRule("slurm.submit_refused", r"^(?:\S+: )?(?:sbatch|salloc)(?:\[\d+\])?: (?:error|fatal): |^(?:\S+: )?srun(?:\[\d+\])?: fatal: ",
               "config_error", P, CAUSE, LOW, "Slurm refused the job script or its options: fix them in the config or the template"),
    FamilyRule("slurm.output_path", SLURM + r".*Could not open (?:stdout|stderr|stdin|input|output|error) file",
               "config_error", P, CAUSE, MEDIUM, "the job's output/error file cannot be created: its directory must exist on the nodes"),

)

SHELL: tuple[FamilyRule, ...] = (
    # --- remote shells (pdsh/ssh start the ranks of DeepSpeed's and MPI's launchers) ---------
    # ssh's own failures exit with 255; refused keys repeat on every restart
    FamilyRule("shell.ssh_auth", r"Permission denied \((?:publickey|password|gssapi|keyboard-interactive|hostbased)[\w,-]*\)|Host key verification failed",
               "config_error", P, CAUSE, MEDIUM, "ssh to the other nodes needs passwordless keys (or use srun as the launcher)"),
    FamilyRule("shell.ssh", r"\bssh exited with exit code 255|\bnot reachable (?:via|over|with) ssh\b|\bssh: connect to host \S+ port \d+: |\b(?:kex|ssh)_exchange_identification: |\bssh: Could not resolve hostname",
               "node_failure", T, CAUSE, MEDIUM, "a node could not be reached over ssh; restart excluding it"),
    # pdsh's own set-up: no hosts, its module directory, its rsh module (rcmd needs a privileged
    # port, so only root can use it)
    FamilyRule("shell.pdsh", r"\bpdsh@\S+: (?:no remote hosts specified|module path \S+ insecure|Couldn't load any \w+ modules)|\brcmd: socket: Permission denied",
               "config_error", P, CAUSE, MEDIUM, "pdsh cannot start the ranks: check the host file, PDSH_RCMD_TYPE=ssh and pdsh's installation"),

)
