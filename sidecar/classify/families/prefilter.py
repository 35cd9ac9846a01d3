"""The cheap first look: a line without any of these words never reaches the family layer."""

# Kept case-sensitive and free of words that fill healthy logs (``nan`` alone is in every
# Megatron iteration line: "number of nan iterations").
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
