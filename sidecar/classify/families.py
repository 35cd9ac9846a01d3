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

Rules are written from how these systems fail (their sources and manuals), not from corpus
lines; ``bench/eval_corpus.py`` measures the layer alone on labelled real lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import re2

from sidecar.classify.model import Confidence, FailureClass, Layer, Role, SignalHit

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
    beats_ignore: bool = False  # training health in iteration lines, which the presets ignore


_TIP_NODE = "restart excluding the node; if it repeats on other nodes, report it to the site"
_TIP_CKPT = ("the checkpoint does not fit this model/config or cannot be read: check --load and the "
             "model arguments, or move the broken iteration aside and resume from an earlier one")
_TIP_NAN = ("training diverged: resume from an earlier checkpoint with a lower learning rate or "
            "skip the bad data; a plain restart repeats it")

# Slurm's clients and daemons prefix their own lines; a rule about Slurm needs one of these.
# slurmstepd names its node since Slurm 21.08 ("slurmstepd-n2: error: ..."); the daemons' own
# log files start a line with an ISO time in brackets ("[2024-05-02T11:03:12.455] error: ...").
_SLURM = (r"(?:(?:srun|sbatch|salloc|slurmstepd(?:-[\w.-]+)?|slurmd|slurmctld|scontrol)(?:\[\d+\])?: (?:error|fatal|Error|FATAL)?:? ?"
          r"|\[\d{4}-\d\d-\d\dT[\d:.]+\] (?:error|fatal): )")

RULES: tuple[FamilyRule, ...] = (
    # --- cascade first: consequences that name words of a cause ------------------------------
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
    FamilyRule("slurm.task_exit_report", _SLURM + r".*(?:Failed to send MESSAGE_TASK_EXIT|DUE TO TASK FAILURE|\*\*\* (?:STEP|JOB) \S+ (?:ON \S+ )?CANCELLED(?: AT \S+)? \*\*\*)",
               "slurm", T, CASCADE, MEDIUM, "Slurm ending the rest of a step after one task failed"),
    FamilyRule("nccl.aborted", r"[Cc]ommunicator (?:was )?aborted|ncclCommAbort|Abort COMPLETE|aborted by another (?:rank|process)",
               "nccl", T, CASCADE, MEDIUM, "NCCL aborting a communicator after an error reported elsewhere"),
    FamilyRule("launcher.actor_died", r"ActorDiedError|RayTaskError|actor died unexpectedly|Killing subprocess \d+|Bypassing SIG|[Rr]eceived SIGTERM|terminate called",
               "abort", T, CASCADE, MEDIUM, "a launcher stopping workers after another failure"),

    # --- process deaths reported by launchers and shells: facts about one rank ----------------
    FamilyRule("death.sigkill", r"exitcode\s*:\s*-9\b|[Ss]ignal 9 \(SIGKILL\)|return ?code ?[=:]? ?-9\b|exit (?:code|status) (?:-9|137)\b|: line \d+: +\d+ Killed\b|^(?:\d+: ?)?Killed$|killed by signal:? (?:Killed|SIGKILL|9)\b|(?:terminated|killed) with signal (?:SIGKILL|9)\b|(?:exited|terminated) on signal 9\b|<Signals\.SIGKILL: 9>|terminated with (?:exit )?code -9\b",
               "killed", T, DEATH, LOW,
               "a process was SIGKILLed: by the kernel's OOM killer (check `dmesg`/sacct MaxRSS), "
               "an admin, or a health check"),
    FamilyRule("death.crash", r"exitcode\s*:\s*-(?:11|7)\b|Signal: (?:Segmentation fault|Bus error) \(\d+\)|Signal (?:11|7) \(SIG(?:SEGV|BUS)\)|Segmentation fault|\bSIGSEGV\b|task \d+: Bus error|killed by signal:? (?:Segmentation fault|Bus error|SIGSEGV|SIGBUS)|: line \d+: +\d+ Bus error|(?:exited|terminated) on signal (?:7|11)\b|<Signals\.SIG(?:SEGV|BUS): \d+>",
               "crashed", T, DEATH, LOW, "a native crash; if it repeats at the same step it is a code or library bug"),

    # --- transport libraries: their own errors say where it failed (before memory words) -----
    FamilyRule("net.ib", r"(?i)IBV_WC_\w+_ERR|ib_mlx5_log\.c|\(synd 0x[0-9a-f]+ vend 0x|ibv_\w+\S* (?:failed|error)|transport retry counter exceeded|RETRY_EXC_ERR|local (?:length|protection|QP operation) error|remote (?:access|operation|invalid request) error|mlx\d\w*:? .*(?:port error|link down|error CQE|fatal|syndrome|completion with error|health (?:recovery|compromised|poll failed)|health_try_recover|bad device|internal error|error state)|port \S+ (?:state )?(?:changed to )?down|LINK_DOWN|link (?:is |went |state changed to )?down\b|NET/IB.*(?:error|fail)|completion .*(?:status=|error )(?:[1-46-9]|\d\d)\b",
               "network", T, CAUSE, MEDIUM, "an InfiniBand/RoCE fault (link, cable, NIC); restart, excluding the node if it names one"),
    FamilyRule("net.ofi", r"(?i)NET/OFI .*(?:error|fail)|\bfi_\w+(?:\(\))? (?:failed|returned|error)|fi_cq_readerr|\bFI_E[A-Z]+\b|libfabric.*(?:error|fail|fatal)|\bcxi\w*.*(?:error|fail|fatal|overflow detected)|\bOFI\b.*(?:error|fail)",
               "network", T, CAUSE, MEDIUM, "a libfabric/OFI transport error (Slingshot, EFA); restart"),
    # a NIC's kernel driver: its transmit queue stalled (IPoIB, RoCE, Ethernet), the driver resets it
    FamilyRule("net.nic", r"NETDEV WATCHDOG: \S+ .*timed out|\b(?:TX|[Tt]ransmit) (?:timeout|hang) (?:detected|on queue)|transmit queue \d+ timed out|\btransmit timeout\b|Detected Tx Unit Hang",
               "network", T, CAUSE, MEDIUM, "a network adapter stalled on the node; restart excluding it if it names one"),
    FamilyRule("net.ucx", r"UCX\s+(?:ERROR|FATAL)|\[[\w.-]+:\d+:\d+:\d+\]\s+\w+\.c:\d+\s+(?:Fatal|FATAL|Error|ERROR)\b|UCS_ERR_\w+|\bucp_\w+.*(?:failed|error)|\buct_\w+.*(?:error|failed)|Endpoint timeout",
               "network", T, CAUSE, MEDIUM, "a UCX transport error; restart"),
    # --- memory --------------------------------------------------------------------------------
    FamilyRule("memory.host", r"DefaultCPUAllocator: can't allocate memory|[Cc]annot allocate memory|\[Errno 12\]|std::bad_alloc|\bMemoryError\b|invoked oom-killer|Memory cgroup out of memory|killed due to memory pressure|running low on memory|[Ee]xceeded (?:job |step )?memory limit|\boom[-_]kill(?:er)?\b|OOM[ -][Kk]ill|Out of memory: Kill|: Out Of Memory\b",
               "host_oom", P, CAUSE, MEDIUM,
               "host memory ran out: lower the data loader workers/prefetch or the micro batch, or ask for more memory per node"),
    FamilyRule("memory.shm", r"(?i)insufficient shared memory|(?:error|fail\w*) (?:while |to )?(?:creat|allocat|open|map)\w* (?:a |the )?shared memory|out of shared memory|shared memory limit|/dev/shm.*(?:No space|full)|(?:failed to|unable to|cannot|could not) (?:extend|create|open|map|allocate|truncate)\S* \S*/dev/shm",
               "shm", P, CAUSE, MEDIUM, "raise the shared memory limit (container --shm-size) or use fewer loader workers"),
    FamilyRule("memory.device", r"(?i)\b(?:CUDA|HIP|XPU|NPU|GPU|device) out of memory|Failed to CUDA (?:calloc|malloc|host alloc)|cudaMalloc\w* failed|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|hipErrorOutOfMemory|out of memory on device|(?:CUDA|Cuda|HIP)(?: driver)?(?: error| failure(?: \d+)?|\])?:? '?out of memory",
               "oom", P, CAUSE, MEDIUM, "the model does not fit: lower the micro batch, recompute activations, or add parallelism"),

    # --- GPU, driver and host hardware, in every source's form -------------------------------
    FamilyRule("gpu.xid", r"NVRM: Xid \(", "gpu_hw", T, CAUSE, MEDIUM, _TIP_NODE),
    FamilyRule("gpu.driver", r"(?i)NVRM: .*(?:error|fail|fallen|lost|fatal|timeout|timed out|\bRC\b|reset|GSP|mismatch|invalid|crash)",
               "gpu_hw", T, CAUSE, MEDIUM, _TIP_NODE),
    FamilyRule("gpu.nvml", r"(?i)\bNVML\b.*(?:Unknown Error|GPU is lost|fail|mismatch|not found|Insufficient)|Unable to determine the device handle for GPU|RmInitAdapter failed|rm_init_adapter failed|nvidia-smi has failed|No devices were found|\bERR!|GPU requires reset|GPU is lost|GPU \S+ (?:is lost|has fallen off)|Driver/library version mismatch|\bnvml error\b|NVIDIA driver not loaded|nvml.{0,20}driver not loaded|NVML_SUCCESS == \w+ INTERNAL ASSERT|NVML_ERROR_[A-Z_]+|DCGM_FR_\w+|(?:uncorrectable|double[- ]bit|\bDBE\b).{0,40}(?:ECC|memory) errors?|row[- ]remap\w*(?: \w+)? fail|Remapping Failure Occurred *: *Yes|pending row[- ]remap|\bdcgmi? diag\b.*\bFail(?:ed)?\b|nvidia-persistenced\S*: .*(?:[Ff]ail|error)",
               "gpu_hw", T, CAUSE, MEDIUM, _TIP_NODE),
    FamilyRule("gpu.fabric", r"(?i)fabric ?manager.*(?:not running|fail|error|state|in progress|uninitiali[sz]ed|not started)|cudaErrorSystemNotReady|system not yet initialized|CUDA_ERROR_SYSTEM_NOT_READY|NVSwitch.*(?:error|fatal|fail)|NVLink.*(?:error|fatal|fail|down|inactive)",
               "gpu_hw", T, CAUSE, MEDIUM, _TIP_NODE),
    FamilyRule("gpu.runtime", r"(?i)cudaError(?:ECCUncorrectable|HardwareStackError|IllegalInstruction|LaunchFailure|Contained|NoDevice|DevicesUnavailable|Unknown|InitializationError|LaunchTimeout|IllegalAddress)|CUDA(?: driver)? error: (?:unknown error|uncorrectable|hardware|unspecified launch failure|an illegal instruction|initialization error|no CUDA-capable device|all CUDA-capable devices are busy|CUDA-capable device\(s\) is/are busy|the launch timed out|invalid device ordinal)|hardware error|ECC error|CUDA_ERROR_(?:ECC_UNCORRECTABLE|HARDWARE_STACK_ERROR|LAUNCH_FAILED|NO_DEVICE|UNKNOWN)|Memory access fault by GPU|HSA_STATUS_ERROR|hipError(?:NoDevice|LaunchFailure|Unknown|IllegalAddress)|amdgpu.*(?:fault|reset|timeout)|\bcuda[A-Z]\w*\(\) failed: \d+",
               "gpu_hw", T, CAUSE, MEDIUM, _TIP_NODE),
    FamilyRule("gpu.library", r"CUBLAS_STATUS_(?:EXECUTION_FAILED|INTERNAL_ERROR|NOT_INITIALIZED)|CUDNN_STATUS_(?:EXECUTION_FAILED|INTERNAL_ERROR|MAPPING_ERROR|NOT_INITIALIZED)|NCCL WARN Cuda failure",
               "cuda_error", T, CAUSE, LOW, "a CUDA library failed on the device; restart once, a repeat without progress stops"),
    FamilyRule("host.hardware", r"(?i)\[Hardware Error\]|AER: (?:Multiple )?Uncorrect(?:ed|able)|severity=Uncorrected|machine check|\bMCE\b.*(?:error|exception)|EDAC .*(?:\bUE\b|uncorrect|fatal)|uncorrected (?:hardware |memory )*error|Memory failure: |soft lockup|hard LOCKUP|self-detected stall|Kernel panic|kernel BUG at|BUG: unable to handle|NMI received for unknown reason|\bOops: [0-9a-f]{4} \[#\d+\]",
               "host_hw", T, CAUSE, MEDIUM, _TIP_NODE),

    # --- Slurm's own errors by family -----------------------------------------------------------
    FamilyRule("slurm.script_missing", _SLURM + r".*execve\(\): \S*slurm_script: No such file",
               "node_failure", T, CAUSE, MEDIUM, "the batch script vanished from the node's spool: a node problem; restart excluding it"),
    FamilyRule("slurm.executable_missing", _SLURM + r".*(?:execve\(\): \S+: (?:No such file|Permission denied)|Unable to find executable|command not found)",
               "env_error", P, CAUSE, MEDIUM, "the program is not on PATH on the compute nodes: load its module or environment in the job script"),
    FamilyRule("slurm.step_refused", _SLURM + r".*(?i:CPU binding outside|(?:cpu|gpu|mem)[ _-]?bind request|Unable to satisfy|invalid (?:cpu|gpu|mem)[ _-]?bind)",
               "config_error", P, CAUSE, MEDIUM, "Slurm cannot place the tasks as asked: fix the binding/tasks per node in the config"),
    FamilyRule("slurm.node_setup", _SLURM + r".*(?:unable to create cgroup|Failed to invoke task plugins|task_[pg]_pre_setuid|(?:cgroup|task) plugin failure|Failed to create job container|\b[a-z]+_[pg]_[a-z_]+: .*(?:[Ff]ail|[Uu]nable|giving up)"
               r"|\b(?:job_container|task|proctrack|jobacct_gather|prep|switch|namespace)/\w+: .*(?:[Ff]ail|[Uu]nable|giving up)"
               # EAGAIN from a daemon: the node ran out of processes or threads
               r"|_forkexec_slurmstepd|slurmstepd failed|Resource temporarily unavailable)",
               "node_failure", T, CAUSE, MEDIUM, "Slurm could not set up the step on this node (cgroups, task plugins): a node problem; restart excluding it"),
    FamilyRule("slurm.step_launch", _SLURM + r".*(?:Task launch for \S+ failed on node|io error with slurmstepd|task \d+ launch failed|Slurmd could not (?:connect|execve|set up)|Job credential expired|Unable to create step for job \d+: (?:Socket|Connection|Communication|Zero Bytes|Job/step already|Job credential|Error generating job credential|Required node not available|Node\(s\) in the allocation are down|Nodes? \S+ (?:is|are) down))",
               "node_failure", T, CAUSE, MEDIUM, "a step could not start on one node; restart excluding it"),
    FamilyRule("slurm.comm", _SLURM + r".*(?:Socket timed out|Unable to contact slurm controller|Connection (?:refused|timed out|reset)|Communication connection failure|Zero Bytes were transmitted|slurm_receive_msgs?\b.*failed|Protocol authentication error|Transport endpoint|Unable to establish|Slurmctld.*not responding|lost connection|Node failure|can't find address for host|Unable to resolve|[Hh]ost name lookup failure|fwd_tree_thread|forward_thread|missing socket error|slurm_(?:bufs_sendto|msg_sendto|send_node_msg|send_recv_\w+)\b.*(?:failed|error))",
               "slurm_controller", T, CAUSE, MEDIUM, "lost contact with the controller or a node; transient"),
    # Slurm's MPI plugins (PMI-2, PMIx) exchange the ranks' addresses between the nodes' stepds
    FamilyRule("slurm.mpi_plugin", _SLURM + r".*\bmpi/(?:pmi2?|pmix\w*|cray_shasta)\b.*(?:[Ff]ail|[Cc]annot|[Uu]nable|[Tt]imed? ?out|timeout)",
               "network", T, CAUSE, MEDIUM, "Slurm's MPI plugin lost contact between the nodes of the step; restart"),
    # slurm_strerror()'s own texts identify Slurm's errors whatever prints them
    FamilyRule("slurm.controller", r"Unable to contact slurm controller|Slurmctld (?:is )?not responding|Slurm backup controller in standby",
               "slurm_controller", T, CAUSE, MEDIUM, "lost contact with the controller; transient"),
    # systemd on the node: a daemon the jobs need died or failed
    FamilyRule("slurm.node_service", r"\b(?:slurmd|slurmstepd|munge|nvidia-fabricmanager|nv-fabricmanager|nvidia-persistenced|nvidia-dcgm)\S*\.service: (?:Main process exited, code=(?:killed|dumped|exited, status=[1-9])|Failed with result)",
               "node_failure", T, CAUSE, MEDIUM, "a daemon of the node (slurmd, munge, the GPU fabric manager) died; restart excluding the node"),
    FamilyRule("slurm.node", r"DUE TO NODE FAIL|Nodes? \S+ (?:are|is) still not ready|wrong with the boot of the nodes?|(?i:\bNHC\b.*(?:ERROR|fail)|health ?check (?:failed|failure|error))|Node failure on|NODE_FAIL|Node \S+ not responding|not responding, setting DOWN|Communication connection failure|Zero Bytes were transmitted or received|Kill task failed|Job credential expired|Invalid job credential|(?i:munge\w* (?:decode|encode) failed|\bmunge\w*: .*(?:error|fail))|(?i:(?:prolog|epilog) (?:poll )?(?:failed|error|timeout|timed out)|error running slurm (?:prolog|epilog))"
               # scontrol show node: a reason Slurm set itself, or a state that takes the node out
               r"|\bReason=(?:Not responding|Kill task failed|NHC|[Hh]ealth)|\bState=\S*(?:DOWN|NOT_RESPONDING|FAIL)\S*",
               "node_failure", T, CAUSE, MEDIUM, "a node of the step failed or lost contact; restart excluding it"),
    FamilyRule("slurm.refused", _SLURM + r".*(?i:invalid .{0,40}specification|invalid [\w-]+ (?:option|value|name|request|argument)|mutually exclusive|are incompatible|not a valid .{0,40}specification|\bis invalid\b|invalid --[\w-]+|invalid (?:partition|account|qos|generic resource|gres|feature|node ?name|job array|time limit|user|wckey|reservation|license|constraint|node count|cpu count|directive)|invalid (?:number|value|count) (?:of|for) |Requested node configuration is not available|Node count specification invalid|More processors requested than permitted|Job violates accounting|(?:QOS|Assoc)(?:Grp|Max)\w*|MaxWall|(?:error|failed): .*partition configuration not available|(?:supported|submit|site) policy|not supported|unsupported|Memory required by task is not available|can ?not be satisfied|unrecognized option|unknown option|invalid option|Only allocated \d+ \w+ asked for|exceeds? (?:the )?(?:job |step )?allocation|Unable to allocate resources|Batch job submission failed|Access/permission denied|not allowed|Invalid account|must specify|must be specified|cannot be (?:larger|smaller|greater|less) than|cannot exceed|not permitted|Unable to create step for job)",
               "config_error", P, CAUSE, MEDIUM, "Slurm refuses this request: fix the partition/account/QOS/gres/node count in the config"),

    FamilyRule("slurm.submit_refused", r"^(?:\S+: )?(?:sbatch|salloc)(?:\[\d+\])?: (?:error|fatal): |^(?:\S+: )?srun(?:\[\d+\])?: fatal: ",
               "config_error", P, CAUSE, LOW, "Slurm refused the job script or its options: fix them in the config or the template"),
    FamilyRule("slurm.output_path", _SLURM + r".*Could not open (?:stdout|stderr|stdin|input|output|error) file",
               "config_error", P, CAUSE, MEDIUM, "the job's output/error file cannot be created: its directory must exist on the nodes"),

    # --- remote shells (pdsh/ssh start the ranks of DeepSpeed's and MPI's launchers) ---------
    # ssh's own failures exit with 255; refused keys repeat on every restart
    FamilyRule("shell.ssh_auth", r"Permission denied \((?:publickey|password|gssapi|keyboard-interactive|hostbased)[\w,-]*\)|Host key verification failed",
               "config_error", P, CAUSE, MEDIUM, "ssh to the other nodes needs passwordless keys (or use srun as the launcher)"),
    FamilyRule("shell.ssh", r"\bssh exited with exit code 255|\bssh: connect to host \S+ port \d+: |\b(?:kex|ssh)_exchange_identification: |\bssh: Could not resolve hostname",
               "node_failure", T, CAUSE, MEDIUM, "a node could not be reached over ssh; restart excluding it"),

    # --- storage I/O: names the cause even inside a wrapper (a container that cannot mount its image)
    FamilyRule("storage.io", r"(?i)\[Errno (?:5|116|121|107|108|30)\]|Input/output error|\bEIO\b|Stale (?:NFS )?file handle|\bnfs\w*:? server \S+ not responding, timed out|\bESTALE\b|Remote I/O error|LustreError|lustre.*(?:evict|error|\brc:? ?=? ?-\d+|corrupt|discard|operations using this service will fail)|\bmmfs\w*:? .*(?:error|stale|expel|\[E\])|\bI/O error\b|rsync error: (?:error in (?:file|socket) IO|timeout)|GPFS.*(?:error|unmounted)|beegfs\S*.*(?:error|timed out|unreachable|disconnect)|(?:error|timed out).*beegfs|Transport endpoint is not connected|\b(?:EXT4|XFS|BTRFS)-fs error|\bnvme\d+(?:n\d+)?:? .*(?:timeout|error|reset)|transport endpoint shutdown|\[Errno 108\]|file write failed|failed writing file|short write|Read-only file system|[Rr]emounting filesystem read-only|LNetError",
               "filesystem", T, CAUSE, MEDIUM, "a shared file system error (NFS/Lustre/GPFS); restart"),

    # --- launch environment -------------------------------------------------------------------
    # a certificate the client does not trust fails every retry (before the download rules)
    FamilyRule("config.tls", r"(?i)CERTIFICATE_VERIFY_FAILED|certificate verify failed|self[- ]signed certificate in certificate chain",
               "config_error", P, CAUSE, MEDIUM, "TLS certificate verification failed: set the site's CA bundle (REQUESTS_CA_BUNDLE, SSL_CERT_FILE) in the job's environment"),
    FamilyRule("mpi.config", r"not enough slots available|(?:could not|unable to) (?:access or )?execute an executable|unable to launch the specified application|(?:requested|asked for) more (?:processes|slots|ranks) than",
               "config_error", P, CAUSE, MEDIUM, "the MPI launcher cannot start the job as configured: check the program path and the processes per node"),
    FamilyRule("config.arguments", r"^(?:\d+: ?)?(?:\[\w+\]: ?){0,2}[\w./-]+: error: (?:unrecognized arguments|argument |the following arguments are required|invalid choice|too few arguments|expected (?:one )?argument)",
               "config_error", P, CAUSE, HIGH, "the program refused its command line: fix the arguments in the config"),
    FamilyRule("env.image_access", r"(?i)pull access denied|repository does not exist|requested access to the resource is denied|unauthorized: authentication required|manifest unknown|manifest for \S+ not found|no such image|(?:pyxis|enroot|docker|podman|apptainer|singularity|registry|manifests?)\b.*(?:error code:? ?404\b|\b404 Not Found)",
               "env_error", P, CAUSE, MEDIUM, "the container image does not exist or needs credentials: check its name and the registry login"),
    FamilyRule("net.fetch", r"dial tcp \S+|\bi/o timeout\b|TLS handshake timeout|net/http: (?:request canceled|timeout)|Could not resolve host|Failed to connect to \S+ port \d+",
               "network", T, CAUSE, LOW, "a download failed on the network; retried on restart"),
    FamilyRule("env.container_pull", r"(?i)(?:pyxis|enroot|docker|podman|singularity|apptainer)\S*:? .*(?:(?:pull|import|download|registry)\S* .*(?:fail|error|timed? ?out)|(?:fail|error)\S* .*(?:pull|import|download|registry))",
               "env_error", T, CAUSE, LOW, "the container image could not be fetched; retried on restart"),
    FamilyRule("env.missing", r"(?i)command not found|bad interpreter|executable file not found in \$PATH|(?:was|were|is) buil[dt] without|(?:not|wasn't) (?:compiled|built) with\b|compiled without|: not found$|error while loading shared libraries|cannot open shared object file|undefined symbol|GLIBC\w* not found|version `\S+' not found|Lmod has detected the following error|module\(s\) (?:are|is) unknown|Unable to locate a modulefile|ModuleCmd_\w+.*ERROR|FATAL: +(?:could not open image|container creation failed|image)|image (?:not found|does not exist)|CUDA driver version is insufficient|NVIDIA driver on your system is too old|found no NVIDIA driver|exec format error|No module named|no such image|manifest unknown|Could not find a version that satisfies|No matching distribution found|python[\d.]*: (?:can't open file|Error while finding module)|(?:Unknown|unsupported|invalid) image (?:format|type)|^(?:\d+: )?FATAL: {2,}\S|(?:enroot|pyxis|apptainer|singularity)\S*: .*(?:Operation not permitted|Permission denied|user namespace|No such file or directory|failed to mount)|\[ERROR\] (?:No such file or directory|Command not found|Could not|Invalid|URL \S+ returned error code: 4(?:0\d|1\d|5\d))\b|Load of (?:requirement )?\S+ failed|Module (?:\S+ )?(?:conflicts with|cannot be loaded)|^(?:\S+: )?(?:source|\.|(?:/(?:usr/)?bin/)?(?:bash|sh|zsh|dash|ksh)): (?:line \d+: )?no such file or directory: |^(?:\S+: )?(?:/(?:usr/)?bin/)?(?:env|bash|sh|zsh|dash|ksh): (?:line \d+: )?.*(?:No such file or directory|Permission denied|cannot execute)|slurm_script: line \d+: .*(?:No such file or directory|Permission denied)",
               "env_error", P, CAUSE, MEDIUM, "the job's software environment is incomplete: check modules, the container image and PATH/LD_LIBRARY_PATH"),

    FamilyRule("env.build", r"\b(?:nvcc|gcc|g\+\+|c\+\+|clang\+*|cc1plus|collect2|ld|ninja|hipcc|cmake)(?: fatal| error)? *: *(?:fatal|error)\b|ninja: build stopped|\bld(?:\.\w+)?: cannot find -l\S+|\bptxas\b.*\b(?:error|fatal)\s*:|^(?:\S+: )?make(?:\[\d+\])?: \*\*\* .*\bError \d+|^error: command '\S+' failed with exit (?:code|status) \d+|Failed building wheel for|Could not build wheels for|Failed to build installable wheels|Unsupported gpu architecture|Error building extension|Error compiling objects for extension",
               "env_error", P, CAUSE, MEDIUM, "building a native extension failed: the compiler/CUDA toolkit in the job's environment does not fit this code or GPU"),

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
    FamilyRule("net.socket", r"(?i)Connection (?:reset by peer|refused|timed out|aborted)|No route to host|Network is unreachable|Software caused connection abort|Broken pipe|Socket Timeout|socket timed out|Name or service not known|Address already in use|\bEADDRINUSE\b|Temporary failure in name resolution|\[Errno (?:104|110|111|113|101|32)\]",
               "network", T, SYMPTOM, LOW, "a network connection failed; restart"),

    # --- storage space ------------------------------------------------------------------------
    FamilyRule("storage.full", r"(?i)No space left on device|Disk quota exceeded|\[Errno (?:28|122)\]|\bENOSPC\b|\bEDQUOT\b|quota exceeded|over quota|out of disk space|(?:not enough|insufficient) (?:free )?disk space",
               "disk_full", P, CAUSE, MEDIUM,
               "free space or raise the quota; if your scratch is cleaned automatically, set this signal's class to transient"),

    # --- training health ------------------------------------------------------------------------
    FamilyRule("health.nan_iteration", r"(?:^|[^A-Za-z])loss(?: value)?['\"]?(?:\s*[:=]\s*|\s+)[-+]?(?:nan|NaN|NAN|inf|Inf|INF)\b",
               "nan_loss", P, CAUSE, HIGH, _TIP_NAN, beats_ignore=True),
    FamilyRule("health.nan", r"(?i)loss (?:is|became|was) (?:nan|inf|not finite)|non-finite loss|\bnan loss\b|NaN or Inf (?:in|detected)|(?:found|detected|contains) (?:a )?(?:nan|inf)\b|\bnan detected",
               "nan_loss", P, CAUSE, MEDIUM, _TIP_NAN),
    FamilyRule("health.loss_scale", r"(?i)loss[ _]scale.{0,20}minimum|minimum loss scale|cannot decrease (?:loss )?scale|loss scale.*underflow",
               "nan_loss", P, CAUSE, HIGH, _TIP_NAN),
    FamilyRule("health.checkpoint_mismatch", r"(?i)size mismatch for \S+|Missing key\(s\) in state_dict|Unexpected key\(s\) in state_dict|Error\(s\) in loading state_dict|copying a param with shape|checkpoint.*(?:mismatch|do(?:es)? not match|incompatible)|(?:mismatch|do(?:es)? not match|incompatible).*checkpoint",
               "checkpoint_error", P, CAUSE, MEDIUM, _TIP_CKPT),
    FamilyRule("health.checkpoint_unreadable", r"(?i)(?:unable|failed|cannot|can't) to load .{0,40}\bcheckpoint|UnicodeDecodeError|UnpicklingError|invalid load key|PytorchStreamReader failed|checkpoint\S*.{0,80}\b(?:is|was) (?:corrupt(?:ed)?|truncated|incomplete)\b|failed finding central directory|not a zip (?:file|archive)|BadZipFile|Ran out of input|HeaderTooLarge|SafetensorError|incomplete metadata",
               "checkpoint_error", P, CAUSE, MEDIUM, _TIP_CKPT),
    # a Rust library (tokenizers, safetensors) panicked: its own bug or its input, repeated on restart
    FamilyRule("code.panic", r"\bthread '[^']*' panicked at ",
               "code_error", P, CAUSE, MEDIUM, "a native library panicked on its input: check the data or tokenizer files, or the library version"),
    FamilyRule("code.native_assert", r"Assertion `[^`]*` failed|: Assertion .* failed\.$",
               "device_assert", P, CAUSE, MEDIUM, "a kernel/native assertion (often an index out of range: bad data or vocab size); a restart repeats it"),
    FamilyRule("config.model_files", r"Can't load (?:the )?(?:tokenizer|config|model|weights)|does not appear to have a file named|is not a valid model identifier|not a local folder and is not a valid",
               "config_error", P, CAUSE, MEDIUM, "the model or tokenizer named in the config cannot be found: check its name/path"),
    FamilyRule("net.http", r"couldn't connect to|\b5\d\d Server Error|Service Unavailable|Bad Gateway|Gateway Time-?out|\b429 Client Error|Too Many Requests|Max retries exceeded with url|HTTPSConnectionPool|Read timed out|Connection aborted",
               "network", T, CAUSE, LOW, "a download or remote service failed; restart"),
    FamilyRule("data.missing", r"(?i)\b(?:error|fatal|critical)\b.{0,80}\b(?:file|path|directory|tokenizer|model|checkpoint|dataset)\b.{0,80}\b(?:not found|does not exist|is missing)|dataset.*(?:not found|does not exist|missing)|(?:not found|does not exist).*dataset|\.idx\b.*\.bin\b",
               "data_missing", P, CAUSE, LOW, "the training data is not where the config says"),
)

EXCEPTION_RULE = "python.exception"  # the rule name of ``exception_family``
IGNORED_RULE = "python.exception_ignored"  # Python's "Exception ignored in: ..." (tracker.py)
# The last line of a Python traceback: an exception type at the start of the line (after rank
# and launcher prefixes), then its message. Its type decides when its message names no family.
_EXC_HEAD = re.compile(r"^((?:[A-Za-z_][\w]*\.)*)(_*[A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Failed|Fault|Warning|NotFound|Invalid)|Exception|error|timeout)(?:\(\w+\))?(?::(.*)|\s*)$")
# A library's own exception need not end in Error: in a module of errors, any class name is one.
_EXC_QUALIFIED = re.compile(r"^((?:[A-Za-z_]\w*\.)*(?:errors?|exceptions?|exc)\.|(?:[a-z_]\w*\.)+)([A-Z][A-Za-z]*)(?::(.*)|\s*)$")
# A logged error that names the exception's class ("... with error <class 'pyarrow.lib.ArrowInvalid'>: ...").
_EXC_LOGGED = re.compile(r"\b(?:error|exception|failed)\b.*<class '((?:\w+\.)*)(\w+)'>:?(.*)", re.IGNORECASE)
# A built-in whose name says neither (StopIteration, KeyboardInterrupt): only the known ones.
_EXC_BARE = re.compile(r"^()([A-Z][A-Za-z]+)(?::(.*)|\s*)$")
# What launchers, collectors and shells put in front of a program's own line: srun --label
# "12: ", torchrun "[default3]:" / "[rank3]:", timestamps, Ray's "(Worker pid=.., ip=..)",
# mpirun --tag-output "[1,3]<stderr>:", pdsh "pdsh@login1: gpu21: " (host names in lower case, so
# that a module with a digit, "pyo3_runtime.PanicException: ", stays the exception it is), NCCL's "host:pid:tid [dev]". Signals,
# ignore patterns and family rules also read the line without it (``line_body``), so that a
# pattern anchored at the start of the program's own text holds whatever was prepended. Log
# levels ("[INFO]", glog's "[W1206 ... file.cpp:12]") are the program's own and stay.
_LAUNCHER = (r"\d+:|\[[^\]]{0,80}\]:|\([^)]{0,160}\)|\d{4}-\d\d-\d\d[T ][\d:.,]+Z?|[\w.-]+/\d+ \[\d+\]:"
             r"|[A-Za-z][\w.-]*:\d+:\d+ \[\d+\]|\[\d+,\d+\]<std(?:out|err)>:|<std(?:out|err)>:|pdsh@[\w.-]+:|[a-z][a-z0-9-]*\d[a-z0-9_.-]*: ")
LINE_PREFIX = rf"^(?:\s*(?:{_LAUNCHER}))+\s*"
_LINE_PREFIX = re2.compile(LINE_PREFIX)
# The exception reader also skips log headers before the exception ("[..] [ERROR]", "12:00:00", what():).
_PREFIX = re.compile(rf"^(?:\s*(?:{_LAUNCHER}|\[[^\]]{{0,80}}\]|\d\d:\d\d:\d\d(?:[.,]\d+)?|what\(\):))+\s*")


def line_body(data: bytes) -> bytes:
    """``data`` without the launcher's prefix (``data`` itself when it has none)."""
    m = _LINE_PREFIX.match(data)
    return data[m.end():] if m is not None and m.end() else data

# exception type -> (error_type, class, role)
EXCEPTIONS: dict[str, tuple[str, FailureClass, Role]] = {}
for _names, _value in (
    ("SyntaxError IndentationError TabError NameError UnboundLocalError AttributeError TypeError KeyError "
     "IndexError ZeroDivisionError NotImplementedError AssertionError RecursionError StopIteration "
     "OverflowError LookupError ArithmeticError UnicodeEncodeError", ("code_error", P, CAUSE)),
    ("ModuleNotFoundError ImportError", ("env_error", P, CAUSE)),
    ("ValueError PermissionError IsADirectoryError NotADirectoryError ConfigError ConfigAttributeError "
     "ConfigKeyError MissingMandatoryValue ValidationError ArgumentError ArgumentTypeError HFValidationError "
     "InterpolationResolutionError", ("config_error", P, CAUSE)),
    ("FileNotFoundError", ("data_missing", P, CAUSE)),
    ("UnicodeDecodeError UnpicklingError EOFError JSONDecodeError BadZipFile SafetensorError CheckpointingException",
     ("checkpoint_error", P, CAUSE)),
    ("MemoryError", ("host_oom", P, CAUSE)),
    ("OutOfMemoryError", ("oom", P, CAUSE)),
    ("ConnectionError ConnectionResetError ConnectionRefusedError ConnectionAbortedError BrokenPipeError "
     "TimeoutError timeout gaierror herror RemoteDisconnected ProtocolError ReadTimeout ConnectTimeout "
     "ReadTimeoutError ConnectTimeoutError", ("network", T, SYMPTOM)),
    ("DistError DistNetworkError DistStoreError RendezvousConnectionError RendezvousTimeoutError RendezvousError "
     "RendezvousStateError", ("store", T, SYMPTOM)),
    ("DistBackendError NcclError", ("nccl", T, CAUSE)),
    ("AcceleratorError CUDAError CudaError", ("cuda_error", T, CAUSE)),
    ("ChildFailedError RendezvousClosedError ActorDiedError RayTaskError KeyboardInterrupt SystemExit "
     "SignalException WorkerError CalledProcessError ProcessRaisedException ProcessExitedException",
     ("abort", T, CASCADE)),
    ("OSError IOError BlockingIOError InterruptedError", ("filesystem", T, CAUSE)),
):
    for _n in _names.split():
        EXCEPTIONS[_n] = _value
# Unknown exception types by their name's words, in this order.
_BY_NAME: tuple[tuple[str, tuple[str, FailureClass, Role]], ...] = (
    ("credential", ("config_error", P, CAUSE)),
    ("timeout", ("timeout", T, CAUSE)),
    ("deadlineexceeded", ("timeout", T, CAUSE)),
    ("deadlock", ("hang", T, CAUSE)),
    ("unavailable", ("network", T, SYMPTOM)),
    ("resourceexhausted", ("oom", P, CAUSE)),
    ("connection", ("network", T, SYMPTOM)),
    ("disconnect", ("network", T, SYMPTOM)),
    ("network", ("network", T, SYMPTOM)),
    ("socket", ("network", T, SYMPTOM)),
    ("rpc", ("network", T, SYMPTOM)),
    ("memoryerror", ("host_oom", P, CAUSE)),
    ("checkpoint", ("checkpoint_error", P, CAUSE)),
    ("config", ("config_error", P, CAUSE)),
    ("validation", ("config_error", P, CAUSE)),
    ("argument", ("config_error", P, CAUSE)),
    ("notfound", ("config_error", P, CAUSE)),
    ("invalid", ("config_error", P, CAUSE)),
)
# A client library's own exceptions (an HTTP transfer or a remote store that broke off) are
# network failures unless their name said otherwise above, or their message says the remote side
# refused (a missing object, no permission: the config's name or credentials, repeated on restart).
_NETWORK_MODULE = re.compile(r"(?i)(?:^|\.)(?:aiohttp|requests|urllib3|httpx|httpcore|http|botocore|s3transfer|grpc|websockets?)\.")
_REFUSED = re.compile(r"(?i)\bdenied\b|\bforbidden\b|\b40[0134] Client Error|\bNoSuch[A-Z]\w+")
# The message of a generic exception (RuntimeError, Exception, a library's own) by its words,
# when no family rule read the line: waiting that ran out, or a peer that went away.
_MESSAGE_WORDS = re.compile(r"(?i)(\btimed? ?out\b|\btimeout\b|store.based barrier)|(\bconnect(?:ion|ed)?\b|\bsocket\b|\bnetwork\b|\bpeer\b|\bunreachable\b)")
# An OSError's errno decides its class: a path that is missing or forbidden repeats on restart
# (EIO, ESTALE, timeouts and resets stay transient, the OSError default).
_ERRNO = re.compile(r"\s*\[Errno (\d+)\]")
_ERRNO_PERMANENT: dict[int, tuple[str, FailureClass, Role]] = {
    1: ("config_error", P, CAUSE), 13: ("config_error", P, CAUSE), 2: ("data_missing", P, CAUSE),
    17: ("code_error", P, CAUSE), 20: ("config_error", P, CAUSE), 21: ("config_error", P, CAUSE),
    36: ("config_error", P, CAUSE), 24: ("config_error", P, CAUSE), 18: ("code_error", P, CAUSE),
    39: ("code_error", P, CAUSE),
}
# An OSError without an errno is a library's own (Hugging Face's "Can't load ...", "Incorrect
# path_or_model_id"): a name or path the config gave that does not resolve.
_NOT_FOUND = re.compile(r"(?i)\bincorrect\b|\bgated\b|have access|(?:un|not )authori[sz]ed|credentials|not found|does not exist|can'?t (?:find|load)|cannot (?:find|load)|no such|not a (?:valid|local)|\binvalid\b")
# An OSError of a file reader (h5py, numpy, PIL) whose file is there but broken repeats on restart.
_CORRUPT = re.compile(r"(?i)\btruncated\b|file signature|\bcorrupt|bad magic|unexpected end of (?:file|data)")
_TIPS = {
    "data_corrupt": "a data or checkpoint file is truncated or corrupt: regenerate it or point the config at a good copy",
    "code_error": "an error in the training code or its inputs; a restart repeats it: fix and resubmit",
    "config_error": "a bad value in the config or arguments; fix it and resubmit",
    "env_error": "a package or module is missing in the job's environment",
    "data_missing": "a file the job needs is missing: check the data and checkpoint paths",
    "checkpoint_error": _TIP_CKPT,
    "host_oom": "host memory ran out: fewer loader workers, a smaller micro batch, or more memory per node",
    "oom": "the model does not fit: lower the micro batch, recompute activations, or add parallelism",
    "network": "a network connection failed; restart",
    "store": "the rendezvous/store master is unreachable: it ended (see other lines) or the network failed",
    "filesystem": "a file system error; restart",
}

# Lines that say they are not errors, whatever their words (applied before any rule).
BENIGN = (
    # log levels below error, first level word on the line (NCCL's "WARN" is its error level)
    r"^[^A-Za-z]{0,40}(?:\S+ )?(?:\[?[WI]\d{4} [\d:.]+ |\[(?:INFO|DEBUG|WARNING|WARN|NOTICE)\]|(?:INFO|DEBUG|WARNING|NOTICE|TRACE)\b[: -])"
    r"|(?:^|[\s|\-(])(?:INFO|DEBUG|WARNING|NOTICE)(?: *[|:\-)]|\s+\d{4}-)"
    r"|\[[WI](?:\d{3,4}(?: [\d:.]+)?)? [^\]]*\.(?:cpp|cc|h|hpp|py):\d+\]|\[\w+ [IWD] \d{4}-\d\d-\d\d |\[(?:INFO|DEBUG|WARNING|WARN|NOTICE)\|"
    r"|\b(?:[Ww]arn(?:ing)?|WARN(?:ING)?):|UserWarning|FutureWarning|DeprecationWarning|RuntimeWarning|ResourceWarning"
    # says it will retry or copes; a recovery; a count of errors that is zero
    r"|(?i:\bseverity:? (?:corrected|info(?:rmational)?)\b|\bnon-?fatal\b|been corrected|no (?:further )?action (?:is )?required|\b(?:successfully )?recovered (?:from|by|after)\b|\bno (?:[\w/-]+ ){0,2}(?:errors|failures|faults)\b|\bredo(?:ing)? for\b|\bwill be ignored\b|[,;] skipping\b|[,;] continuing (?:without|anyway)\b|Unable to initialize backend '|(?:^|[^n])recoverable error|\b(?:errors?|failures?|faults?|mismatch(?:es)?)(?: count)?\s*[:=]?\s*(?:0(?:\.0+)?|false)(?:[,;|)}]|\s*$)|(?:^|[\s,(:;])0 (?:[A-Za-z]+ )?(?:errors|failures|faults)\b)"
    # a counter report whose every count is zero ("ECC errors: Volatile Single Bit 0, Double Bit 0")
    r"|(?i:\berrors?\b[^:]{0,20}:(?:\s*[a-z][a-z -]*\s0\b[,;]?)+\s*$)"
    # slurmstepd uses /tmp when it cannot create the job's TMPDIR (it says "Setting TMPDIR to /tmp")
    r"|Unable to create TMPDIR"
    r"|(?i:\bretrying\b|[(:,] ignored\.?$|\bwill (?:be )?retr(?:y|ied)\b|\btry(?:ing)? again\b|\(try=\d+|going to \S+ instead|falling back|fall back to)"
    # advice and traceback scaffolding
    r"|^\s*(?:\S+:\s*)?(?:For debugging|Compile with|CUDA kernel errors might|[Cc]onsider |You (?:can|may|might|should) |Please |H[Ii][Nn][Tt]|Note:|NOTE:|To (?:enable|disable|avoid) |See |If (?:you|this|the) )"
    r"|^\s*(?:\S+:\s*)?(?:File \"|Traceback \(most recent|Exception raised from|frame #\d|During handling of|The above exception)"
    r"|^(?:\S+:)?\s*raise [\w.]+(?:\(|$)"
    r"|error_file:|<NO_OTHER_FAILURES>|To enable traceback"
    # normal shutdown chatter of torchrun/c10d
    r"|(?i:destroy(?:ing)?_?(?: the)? process[ _]group|shutting down (?:the )?(?:rendezvous|workers|agent)|rendezvous .*(?:closed|is closed))"
    r"|Connection closed by localRank"
    # huggingface_hub logs a request that failed and goes on with its cache: "'<error>' thrown while requesting HEAD <url>"
    r"|' thrown while requesting [A-Z]+ "
    # srun retries a single controller message that timed out; only its final failure counts
    r"|slurm_receive_msg: Socket timed out"
    # Xid 13/31/43: the application's own fault (its error is printed by the application)
    r"|NVRM: Xid \([^)]*\): (?:13|31|43)\b"
    # side services (experiment trackers) log their own errors and carry on; comment lines
    # (their loggers' names are lower case: "wandb.errors.CommError: ..." is an exception that ends the run)
    r"|^(?:wandb|mlflow|comet_ml|tensorboard|neptune)(?:\.[a-z_]+)*: |^#"
    # mlx5's report of a read the firmware refused (a query of counters or registers), not a fault
    r"|\bmlx5_cmd_(?:out_err|check):\d+:\(pid \d+\): (?:QUERY_\w+|ACCESS_REG)\("
)

# Error-looking vocabulary: a line without any of these never reaches the family layer. Kept
# case-sensitive and free of words that fill healthy logs (``nan`` alone is in every Megatron
# iteration line: "number of nan iterations").
PREFILTER = (
    r"Error|ERROR|error|Exception|EXCEPTION|FATAL|Fatal|fatal|[Ff]ail|FAIL|Killed|SIGKILL|SIGSEGV|Segmentation"
    r"|exitcode|NVRM|NVML|nvidia-smi|Xid|ECC|[Hh]ardware|EDAC|MCE|[Mm]achine check|lockup|stall|panic"
    r"|[Tt]imed out|[Tt]imeout|refused|reset by peer|closed by|[Cc]losed\.|[Bb]roken pipe|Errno|denied"
    r"|not found|[Nn]o such file|[Uu]nable to|[Cc]annot|can't|[Ii]nvalid|mismatch|[Cc]orrupt|[Aa]bort|lost|[Ss]tale"
    r"|[Qq]uota|No space|out of memory|oom|OOM|bad_alloc|unreachable|not available|exceeded|violates|not allowed"
    r"|loss(?: value)?['\"]?(?:\s*[:=]\s*|\s+)[-+]?(?:nan|NaN|NAN|inf|Inf|INF)\b|\bNaN\b|\bInf\b|(?:is|became|found|detected|contains) (?:a )?(?:nan|inf)\b"
    r"|not finite|non-finite|nan loss|minimum loss scale|[Ll]oss[ _]scale.{0,20}minimum|decrease (?:loss )?scale"
    r"|ERR!|synd 0x|bad device|checked in|Duplicate GPU|[Ff]abric ?[Mm]anager|NVLink|NVSwitch|LINK_DOWN|[Ll]ink (?:is |went |state changed to )?(?:[Dd]own|DOWN)|port \S+ down"
    r"|not match|incompatible|state_dict|\.idx\b|[Uu]ndefined symbol|[Cc]ommand not found|: not found|modulefile|Unknown|unknown error|No module named|NotFound|[Cc]ould not find|(?:errors?|exceptions?|exc)\.[A-Z]"
    r"|[Ww]atchdog|[Hh]eartbeat|\b[Hh]ang\b|stuck|\bhung\b|deadlock|[NR]CCL WARN|amdgpu|[Ee]xpel|unrecognized|[a-z_]\.[A-Z][A-Za-z]*: |nccl\w*Error|NODE FAIL|Node failure|credential"
    r"|Transport endpoint|Bus error|code=killed|code=dumped|not enough|Not enough|No route to host|ssh exited|ssh: |Host key|overflow detected|NETDEV WATCHDOG|TX timeout|BUG: |NMI received|Oops: |is down\b|\breset\b|read-only|Reason=|State=\S*(?:DOWN|FAIL)|NOT_RESPONDING|StopIteration|KeyboardInterrupt|Zero Bytes|[Cc]ommunicator|not responding|MPI_|ORTE|[Pp]rolog|[Ee]pilog|be satisfied"
)


def _strip_prefix(text: str) -> str:
    m = _PREFIX.match(text)
    return text[m.end():] if m else text


class FamilyLayer:
    """Classify a line by family (call only for lines no signal matched)."""

    def __init__(self, disabled: tuple[str, ...] = (), options: "re2.Options | None" = None) -> None:
        self.rules = tuple(r for r in RULES if r.name not in disabled)
        self._set = re2.Set.SearchSet(options) if options is not None else re2.Set.SearchSet()
        for rule in self.rules:
            self._set.Add(rule.pattern)
        self._set.Compile()
        self._beats_ignore = tuple(i for i, r in enumerate(self.rules) if r.beats_ignore)
        self._benign = re2.compile(BENIGN, options) if options is not None else re2.compile(BENIGN)
        self.exceptions_enabled = EXCEPTION_RULE not in disabled

    def benign(self, data: bytes) -> bool:
        body = line_body(data)
        return self._benign.search(data) is not None or (body is not data and self._benign.search(body) is not None)

    def match(self, data: bytes, ignored: bool) -> FamilyRule | None:
        """The rule that reads ``data`` (``ignored``: an ignore pattern of the preset matched)."""
        found = set(self._set.Match(data) or ())
        body = line_body(data)
        if body is not data:
            found.update(self._set.Match(body) or ())
        # training health is read in progress lines, which presets ignore and log at INFO
        health = [i for i in found if i in self._beats_ignore]
        if health:
            return self.rules[min(health)]
        if ignored or self.benign(data):
            return None
        if found:
            return self.rules[min(found)]
        if self.exceptions_enabled:
            return exception_family(data.decode("utf-8", "replace"))
        return None


def exception_family(text: str) -> FamilyRule | None:
    """A traceback's final line decides by its exception type (its message named no family)."""
    body = _strip_prefix(text).strip()  # indented: a child's traceback in torch elastic's summary
    m = _EXC_HEAD.match(body) or _EXC_QUALIFIED.match(body) or _EXC_LOGGED.search(body)
    if m is None:
        m = _EXC_BARE.match(body)
        if m is None or m.group(2) not in EXCEPTIONS:
            return _errno_report(body)
    name = m.group(2).lstrip("_")
    if name.endswith("Warning"):
        return None
    if name in ("error", "timeout") and not m.group(1):
        return None  # "error: ..." prose, not a traceback
    value = EXCEPTIONS.get(name)
    confidence = MEDIUM
    if name in ("OSError", "IOError"):
        errno = _ERRNO.match(m.group(3) or "")
        if errno is not None and int(errno.group(1)) in _ERRNO_PERMANENT:
            value = _ERRNO_PERMANENT[int(errno.group(1))]
        elif errno is None and _NOT_FOUND.search(m.group(3) or ""):
            value = ("config_error", P, CAUSE)  # a library's own OSError about a path or name
        elif errno is None and _CORRUPT.search(m.group(3) or ""):
            value = ("data_corrupt", P, CAUSE)
    if value is None:
        value = next((v for word, v in _BY_NAME if word in name.lower()), None)
    if value is None and _NETWORK_MODULE.search(m.group(1)):
        refused = _NOT_FOUND.search(m.group(3) or "") or _REFUSED.search(m.group(3) or "")
        value = ("config_error", P, CAUSE) if refused else ("network", T, SYMPTOM)
    if value is None:
        words = _MESSAGE_WORDS.search(m.group(3) or "")
        confidence = LOW
        if words is None:  # RuntimeError, Exception, a library's own error: a bug until shown otherwise
            value = ("code_error", P, CAUSE)
        elif words.group(1):
            value = ("timeout", T, CAUSE)
        else:
            value = ("network", T, SYMPTOM)
    error_type, klass, role = value
    return FamilyRule(EXCEPTION_RULE, _EXC_HEAD.pattern, error_type, klass, role, confidence,
                      _TIPS.get(error_type, ""))


# A logged error that carries an errno ("ERROR - Data loading failed: [Errno 2] No such file ...").
_ERRNO_REPORT = re.compile(r"(?i)\b(?:error|failed|failure|cannot|can't|unable)\b.*\[Errno (\d+)\]")


def _errno_report(body: str) -> FamilyRule | None:
    m = _ERRNO_REPORT.search(body)
    if m is None:
        return None
    error_type, klass, role = _ERRNO_PERMANENT.get(int(m.group(1)), ("filesystem", T, CAUSE))
    return FamilyRule(EXCEPTION_RULE, _ERRNO_REPORT.pattern, error_type, klass, role, LOW, _TIPS.get(error_type, ""))


def family_hit(rule: FamilyRule, line_no: int, text: str, node: str | None) -> SignalHit:
    return SignalHit(line_no=line_no, line=text, signal=rule.name, error_type=rule.error_type,
                     failure_class=rule.failure_class, node=node, role=rule.role, layer=Layer.FAMILY,
                     confidence=rule.confidence, tip=rule.tip)
