"""Lines that say they are not errors, whatever their words (applied before any rule).

One entry per kind, and per family of sources, so that related exceptions sit together; the
layer sees one alternation.
"""

BENIGN = "|".join((
    # log levels below error, first level word on the line (NCCL's "WARN" is its error level)
    r"^[^A-Za-z]{0,40}(?:\S+ )?(?:\[?[WI]\d{4} [\d:.]+ |\[(?:INFO|DEBUG|WARNING|WARN|NOTICE)\]|(?:INFO|DEBUG|WARNING|NOTICE|TRACE)\b[: -])"
    r"|(?:^|[\s|\-(])(?:INFO|DEBUG|WARNING|NOTICE)(?: *[|:\-)]|\s+\d{4}-)"
    r"|\[[WI](?:\d{3,4}(?: [\d:.]+)?)? [^\]]*\.(?:cpp|cc|h|hpp|py):\d+\]|\[\w+ [IWD] \d{4}-\d\d-\d\d |\[(?:INFO|DEBUG|WARNING|WARN|NOTICE)\|"
    r"|\b(?:[Ww]arn(?:ing)?|WARN(?:ING)?):|UserWarning|FutureWarning|DeprecationWarning|RuntimeWarning|ResourceWarning",
    # says it will retry or copes; a recovery; a count of errors that is zero (also in a table's cell:
    # dcgmi stats' "| * Double Bit ECC Errors | 0 |"; and "found NaN in 0 of 100 steps", "detected nan: False",
    # "no NaN or Inf detected": a NaN loss in a step line is read before these, by health.nan_iteration)
    r"(?i:\bseverity:? (?:corrected|info(?:rmational)?)\b|\bnon-?fatal\b|been corrected|no (?:further )?action (?:is )?required|\b(?:successfully )?recovered (?:from|by|after)\b|\bno (?:[\w/-]+ ){0,2}(?:errors|failures|faults|nans?|infs?)\b|\bredo(?:ing)? for\b|\bwill be ignored\b|[,;] skipping\b|[,;] continuing (?:without|anyway)\b|Unable to initialize backend '|(?:^|[^n])recoverable error|\b(?:errors?|failures?|faults?|mismatch(?:es)?|nans?|infs?)(?: count)?\s*[:=|]?\s*(?:0(?:\.0+)?|false)\s*(?:[,;|)}]|$)|(?:^|[\s,(:;])0 (?:[A-Za-z]+ )?(?:errors|failures|faults)\b|\b(?:in|on|for) 0 (?:out )?of \d+\b)",
    # a counter report whose every count is zero ("ECC errors: Volatile Single Bit 0, Double Bit 0")
    r"(?i:\berrors?\b[^:]{0,20}:(?:\s*[a-z][a-z -]*\s0\b[,;]?)+\s*$)",
    # ("Please try again" in an exception's message is a server's advice to a client that gave up)
    r"(?i:\bretrying\b|[(:,] ignored\.?$|\bwill (?:be )?retr(?:y|ied)\b|\btrying again\b|\b(?:will|'ll|to|then) try again\b|\(try=\d+|going to \S+ instead|falling back|fall back to)",
    # advice and traceback scaffolding
    # (at the start of the program's own text: launchers' prefixes are read off by line_body, and
    # "ValueError: Please ..." is an exception, not advice)
    r"^\s*(?:For debugging|Compile with|CUDA kernel errors might|[Cc]onsider |You (?:can|may|might|should) |Please |H[Ii][Nn][Tt]|Note:|NOTE:|To (?:enable|disable|avoid) |See |If (?:you|this|the) )"
    r"|^\s*(?:File \"|Traceback \(most recent|Exception raised from|frame #\d|During handling of|The above exception)"
    r"|^(?:\S+:)?\s*raise [\w.]+(?:\(|$)"
    r"|error_file:|<NO_OTHER_FAILURES>|To enable traceback",
    # --- Slurm, launchers, environment
    # slurmstepd uses /tmp when it cannot create the job's TMPDIR (it says "Setting TMPDIR to /tmp")
    r"Unable to create TMPDIR",
    # srun retries a single controller message that timed out; only its final failure counts
    r"slurm_receive_msg: Socket timed out",
    # Open MPI's and PMIx's component loader skips a plugin whose library is missing: "... (ignored)"
    r"\(ignored\)\s*$",
    # Slurm's gpu/nvml plugin asks every GPU for clock/frequency tables; many answer NVML's "Not Supported"
    r"_nvml_\w+: .*: Not Supported\s*$",
    # normal shutdown chatter of torchrun/c10d
    r"(?i:destroy(?:ing)?_?(?: the)? process[ _]group|shutting down (?:the )?(?:rendezvous|workers|agent)|rendezvous .*(?:closed|is closed))"
    r"|Connection closed by localRank",
    # --- GPU, hardware, network, storage
    # Xid 13/31/43: the application's own fault (its error is printed by the application)
    r"(?:NVRM: Xid \([^)]*\):|\bX(?:id|ID)(?: error)?:?) (?:13|31|43)\b",
    # counts of corrected errors (amdgpu RAS: "2 correctable hardware errors detected in umc block, no
    # user action is needed"), mcelog's advice after a machine check, a cgroup's zero OOM counters
    r"(?i:\bcorrect(?:ed|able) (?:hardware |memory |ECC )*errors? (?:detected|received|logged|reported)\b)"
    # amdgpu's report that its reset of a hung GPU worked ("GPU reset(2) succeeded!", kernel 6.x "GPU reset end with ret = 0",
    # per-queue "Ring gfx_0.0.0 reset succeeded"): the hang it reset was reported before it, by the line that is the cause
    r"|amdgpu.*\b(?:reset(?:\(\d+\))? succeeded|reset end with ret = 0\b)"
    r"|Run the above through 'mcelog|^\s*oom(?:_group)?(?:_kill)? 0\s*$"
    # the kernel dropped a clean page with a memory error: no process was harmed (a harmed one gets
    # its own "Sending SIGBUS to <process>" line)
    r"|Memory failure: \w+: recovery action for clean [^:]*: Recovered"
    # PyTorch's pointer to the CUDA docs under a CUDA error ("Search for `cudaErrorIllegalAddress' in https://...")
    r"|Search for `(?:cuda|hip)\w+' in https?://",
    # mlx5's report of a read the firmware refused (a query of counters or registers), not a fault
    r"\bmlx5_cmd_(?:out_err|check):\d+:\(pid \d+\): (?:QUERY_\w+|ACCESS_REG)\(",
    # Open MPI loads every component it finds and reports one whose library is missing, then goes on without it
    r"mca_base_component_repository_open: unable to open"
    # the kernel's soft-quota warning (writes still succeed: the hard limit's "write failed, ... limit reached" is the failure);
    # s3fs-fuse's own levels below error ([INF], [DBG], [WAN]: a HEAD that found no object is how it checks for one)
    r"|\bwarning, (?:user|group|project) (?:block|file) quota exceeded|\[(?:INF|DBG|WAN)\] \w+\.cpp:",
    # --- Python, frameworks, side services
    # huggingface_hub logs a request that failed and goes on with its cache: "'<error>' thrown while requesting HEAD <url>"
    r"' thrown while requesting [A-Z]+ ",
    # JAX/TensorFlow probing accelerator plugins the node does not have (logged at glog's E level)
    r"Failed to open libtpu\b|\blibtpu\S*: cannot open shared object file",
    # a first attempt finding no checkpoint to resume from and saying so
    r"(?i:\b(?:starting|training|will start|start training|train) from scratch\b)",
    # side services (experiment trackers) log their own errors and carry on; comment lines
    # (their loggers' names are lower case: "wandb.errors.CommError: ..." is an exception that ends the run)
    r"^(?:wandb|mlflow|comet_ml|tensorboard|neptune)(?:\.[a-z_]+)*: |^#",
))
