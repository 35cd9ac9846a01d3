"""Storage: I/O errors of shared and local file systems, and space or quota exhausted."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, MEDIUM, P, T

IO: tuple[FamilyRule, ...] = (
    # --- storage I/O: names the cause even inside a wrapper (a container that cannot mount its image)
    FamilyRule("storage.io", r"(?i)\[Errno (?:5|116|121|107|108|30)\]|Input/output error|\bEIO\b|Stale (?:NFS )?file handle|\bnfs\w*:? server \S+ not responding, timed out|\bESTALE\b|Remote I/O error|LustreError|lustre.*(?:evict|error|\brc:? ?=? ?-\d+|corrupt|discard|operations using this service will fail)|\bmmfs\w*:? .*(?:error|stale|expel|\[E\])|\bI/O error\b|rsync error: (?:error in (?:file|socket) IO|timeout)|GPFS.*(?:error|unmounted)|beegfs\S*.*(?:error|timed out|unreachable|disconnect)|(?:error|timed out).*beegfs|Transport endpoint is not connected|\b(?:EXT4|XFS|BTRFS)-fs error|\bnvme\d+(?:n\d+)?:? .*(?:timeout|error|reset)|transport endpoint shutdown|\[Errno 108\]|file write failed|failed writing file|short write|Read-only file system|[Rr]emounting filesystem read-only|LNetError"
               # Linux AIO returns -errno (DeepSpeed's NVMe offload: "io_submit failed with -5")
               r"|\bio_(?:submit|getevents) failed with -5\b",
               "filesystem", T, CAUSE, MEDIUM, "a shared file system error (NFS/Lustre/GPFS); restart"),

)

SPACE: tuple[FamilyRule, ...] = (
    # --- storage space ------------------------------------------------------------------------
    FamilyRule("storage.full", r"(?i)No space left on device|Disk quota exceeded|\[Errno (?:28|122)\]|\bENOSPC\b|\bEDQUOT\b|quota exceeded|over quota|out of disk space|(?:not enough|insufficient) (?:free )?disk space",
               "disk_full", P, CAUSE, MEDIUM,
               "free space or raise the quota; if your scratch is cleaned automatically, set this signal's class to transient"),

)
