"""The cheap first look: a line without any of these words never reaches the family layer.

Kept case-sensitive and free of words that fill healthy logs (``nan`` alone is in every
Megatron iteration line: "number of nan iterations"). One entry per family of sources, so
that a family's words sit beside each other; the layer sees one alternation.
"""

from sidecar.classify.families.training import NAN_LOSS

PREFILTER = "|".join((
    # any source's error vocabulary
    r"Error|ERROR|error|Exception|EXCEPTION|FATAL|Fatal|fatal|[Ff]ail|FAIL|exitcode|[Tt]imed out|[Tt]imeout|refused|Errno|denied"
    r"|not found|[Nn]o such file|[Uu]nable to|[Cc]annot|can't|[Ii]nvalid|[Aa]bort|lost|not available|exceeded|violates|not allowed"
    r"|Unknown|unknown error|NotFound|[Cc]ould not find|unrecognized|not enough|Not enough|\breset\b",
    # Slurm, launchers, MPI, remote shells, containers and the software environment
    r"NODE FAIL|Node failure|credential|Reason=|State=\S*(?:DOWN|FAIL)|NOT_RESPONDING|Zero Bytes|not responding|MPI_|ORTE"
    r"|[Pp]rolog|[Ee]pilog|be satisfied|ssh exited|ssh: |Host key|[Uu]ndefined symbol|[Cc]ommand not found|: not found|modulefile"
    r"|No module named|unbound variable|[Bb]ad substitution|ambiguous redirect|unexpected EOF|parameter (?:null or )?not set"
    r"|Could not solve|critical +libmamba|remote hosts|insecure|not a valid identifier|source was compiled with|is not installed",
    # GPU, accelerators, host hardware, memory and process deaths
    r"Killed|SIGKILL|SIGSEGV|Segmentation|segmentation fault|Bus error|code=killed|code=dumped|NVRM|NVML|nvidia-smi|X(?:id|ID)|ECC|[Hh]ardware|EDAC|MCE"
    r"|[Mm]achine check|lockup|stall|panic|ERR!|bad device|Duplicate GPU|[Ff]abric ?[Mm]anager|N[Vv][Ll]ink|NVSwitch|amdgpu|BUG: "
    r"|NMI received|Oops: |out of memory|oom|OOM|bad_alloc|blocked for more than|general protection|DPC: |Pending Page|Reset Required"
    r"|Reset Recommended|pending row|faulty memory|no longer bound|illegal (?:memory|instruction)|launch failure|low memory!"
    r"|sending SIG(?:TERM|KILL) to|result of limit|kthread starved|GPU access blocked|Got nvmlSt|Insufficient External|infoROM"
    r"|Interrupt request issue|not done with your previous|fallen off|fell off|is not compatible with the current|\| Asserted",
    # network transports, collectives, stores and storage
    r"reset by peer|closed by|[Cc]losed\.|[Bb]roken pipe|unreachable|No route to host|synd 0x|LINK_DOWN"
    r"|[Ll]ink (?:is |went |state changed to )?(?:[Dd]own|DOWN)|port \S+ down|is down\b|Transport endpoint|overflow detected"
    r"|NETDEV WATCHDOG|TX timeout|health compromised|Cable unplugged|Cable disabled|[NR]CCL WARN|nccl\w*Error|[Cc]ommunicator|checked in|[Ww]atchdog|[Hh]eartbeat|\b[Hh]ang\b"
    r"|stuck|\bhung\b|deadlock|[Ss]tale|[Ee]xpel|[Qq]uota|No space|read-only"
    r"|[Ss]tate:\s+(?:\d:\s+)?(?:Down|DOWN|PORT_DOWN|Polling|POLLING|Disabled|DISABLED|Initializing|INIT|PORT_INIT)|EVENT_\w+_(?:ERR|FATAL)"
    r"|without any active interface|Unit Hang|tx_timeout|UNDELIVERABLE|C_RC_|unexpectedly disconnected|[Cc]ould not resolve|\bEAI_[A-Z]"
    r"|No address associated|does not resolve|nodename nor servname|is full\b|unmounted by the system|Lost membership|has been shut down|\bDER_[A-Z]"
    r"|probe failure|not ready|completion from peer|no space left|UNAVAILABLE|DEADLINE_EXCEEDED|not linked|not built with|CURLE_|curl: \(|check_hw_|server misbehaving|no such host|\b(?:408|429|50[0234]) [A-Z]|ErrorCode:",
    # Python, frameworks and training health
    NAN_LOSS + r"|\bNaN\b|\bInf\b|missing-checkpoint|CRITICAL"
    r"|(?:is|became|found|detected|contains) (?:a )?(?:nan|inf)\b|not finite|non-finite|nan loss|minimum loss scale"
    r"|[Ll]oss[ _]scale.{0,20}minimum|decrease (?:loss )?scale|mismatch|not match|incompatible|[Cc]orrupt|state_dict|\.idx\b"
    r"|(?:errors?|exceptions?|exc)\.[A-Z]|[a-z_]\.[A-Z][A-Za-z]*: |StopIteration|KeyboardInterrupt",
))
