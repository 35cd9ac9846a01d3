"""Storage: I/O errors of shared and local file systems, object stores, and space or quota exhausted."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, MEDIUM, P, T, TIP_NODE

_TIP_FULL = "free space or raise the quota; if your scratch is cleaned automatically, set this signal's class to transient"

IO: tuple[FamilyRule, ...] = (
    # --- space named by its code inside an I/O error (Lustre's "rc = -122", an errno field, DAOS,
    # Rust's io::ErrorKind): before the I/O rule, which would read the same line as a transient error
    FamilyRule("storage.full_code", r"(?i)lustre.*(?:\brc:? ?=? ?|\bfailed:? |\berror:? )-(?:28|122)\b|\berrno ?[=:] ?(?:28|122)\b|\bDER_NOSPACE\b|kind: (?:StorageFull|FilesystemQuotaExceeded)\b",
               "disk_full", P, CAUSE, MEDIUM, _TIP_FULL),
    # a mount the server refuses (an export or share the config names wrongly or may not use)
    FamilyRule("storage.mount_refused", r"\bmount(?:\.\w+)?: (?:access denied by server|mounting \S+ failed, reason given by server: No such file or directory)|\bmount error\(13\): Permission denied",
               "config_error", P, CAUSE, MEDIUM, "the file server refused the mount: check the export/share name and this job's access to it"),
    # the node's own disks: the block layer's, the NVMe driver's and the local file systems' reports of a failed device
    FamilyRule("storage.local_disk", r"(?i)critical (?:medium|target|nexus|protection|space allocation) error, dev \w+|\b(?:timeout|I/O) error, dev \w+|Buffer I/O error on (?:dev|device) \w+"
                                     r"|\b(?:EXT4|XFS|BTRFS)-fs error|\bXFS \([^)]*\): (?:.*[Ff]ilesystem has been shut down|[Cc]orruption (?:of in-memory data )?detected|.*[Ss]hutting down filesystem|log I/O error|metadata I/O error)|\bBTRFS(?:: error| error| critical) \(device "
                                     r"|\bnvme\d+(?:n\d+)?:? .*(?:QID \d+ timeout|controller is down|[Dd]evice not ready|probe failure|I/O Error|error detected|[Rr]eset(?:ting)? controller|reset failed|failed to (?:reset|enable))"
                                     # SCSI sense data and host status of a failed command; an md array that lost a member
                                     r"|\bsd \d+:\d+:\d+:\d+: \[\w+\] .*(?:Unrecovered read error|[Ww]rite error|Sense Key : (?:Medium|Hardware) Error|hostbyte=DID_(?:BAD_TARGET|NO_CONNECT|TIME_OUT|ABORT|ERROR|TRANSPORT_\w+))"
                                     r"|\bmd/raid\w*:\w+: Disk failure on",
               "host_hw", T, CAUSE, MEDIUM, "a local disk of the node failed; " + TIP_NODE),
    # HDF5 locks a file it opens (flock); a file system without flock (errno 38) or a second writer of the same
    # file (errno 11) fails the open every time: before the I/O rule and the EAGAIN of the exception's errno
    FamilyRule("storage.file_lock", r"unable to lock file, errno = \d+",
               "config_error", P, CAUSE, MEDIUM, "HDF5 cannot lock the file: set HDF5_USE_FILE_LOCKING=FALSE on file systems without locks, or open each file for writing from one process"),
    # --- storage I/O: names the cause even inside a wrapper (a container that cannot mount its image)
    FamilyRule("storage.io", r"(?i)\[Errno (?:5|116|121|107|108|30)\]|Input/output error|\bEIO\b|Stale (?:NFS )?file handle|\b(?:nfs\w*|lockd|statd):? server \S+ not responding, timed out|\bESTALE\b|Remote I/O error|LustreError|lustre.*(?:evict|error|\brc:? ?=? ?-\d+|corrupt|discard|operations using this service will fail)|\bmmfs\w*:? .*(?:error|stale|expel|\[E\])|\bI/O error\b|rsync error: (?:error in (?:file|socket) IO|timeout)|GPFS.*(?:error|unmounted)|beegfs\S*.*(?:error|timed out|unreachable|disconnect)|(?:error|timed out).*beegfs|Transport endpoint is not connected|transport endpoint shutdown|\[Errno 108\]|file write failed|failed writing file|short write|Read-only file system|[Rr]emounting filesystem read-only|LNetError"
                             # GPFS (mmfs.log's [E]/[X] lines): a node that lost the cluster or a file system the daemon unmounted
                             r"|[Ll]ost membership in cluster|being expelled|\bto expel \S+ (?:\([\w.-]+\) )?from cluster|expelled from (?:the )?cluster|unmounted by the system|[Uu]nable to contact any quorum nodes"
                             # CephFS's kernel client (libceph/ceph): a connection to an OSD/MDS that failed, a hung or evicted session
                             r"|\b(?:lib)?ceph: .*(?:socket error|connect error|error on (?:read|write)|\bmds\d+ hung|caps stale|evicted|blo(?:ck|ack)listed|reconnect denied)"
                             # DAOS's own error codes (DER_*) of a target or a network that failed
                             r"|\bDER_(?:TIMEDOUT|UNREACH|EVICTED|HG|IO|EXCLUDED|STALE|SHUTDOWN|NVME_IO|CSUM|NO_HDL|BAD_TARGET)\b"
                             r"|\bNFS\w*: .*(?:unhandled error -\d+|[Ll]ock reclaim failed)"
                             # Linux AIO returns -errno (DeepSpeed's NVMe offload: "io_submit failed with -5")
                             r"|\bio_(?:submit|getevents) failed with -5\b",
               "filesystem", T, CAUSE, MEDIUM, "a shared file system error (NFS/Lustre/GPFS); restart"),

)

OBJECT: tuple[FamilyRule, ...] = (
    # --- object stores and HTTP by their status: a request the service refused (credentials, permission,
    # a bucket or key that does not exist) repeats on restart; throttling and server errors pass.
    # botocore "An error occurred (<Code>) when calling the <Op> operation", google.api_core
    # "<Exception>: <status> <METHOD> <url>", gcsfs "HttpError: <message>, <status>", requests
    # "<status> Client Error: <reason> for url" (its 5xx/429 are training's net.http), urllib "HTTP Error <status>:",
    # azure "ErrorCode:<Code>" and "(<Code>) message", curl "The requested URL returned error: <status>".
    FamilyRule("storage.object_refused", r"An error occurred \((?:AccessDenied|AllAccessDisabled|AccountProblem|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken|NoSuch\w+|InvalidBucketName|EntityTooLarge|InvalidArgument|AuthorizationHeaderMalformed|40[0134])\)"
                                         r"|(?:exceptions|errors|retry)\.\w+: 40[0134] [A-Z]+ |HttpError: .*, 40[0134]$|\b40[0134] Client Error: |HTTP Error 40[0134]: |The requested URL returned error: 40[0134]\b"
                                         r"|(?:ErrorCode:|azure\.core\.exceptions\.\w+: \()(?:AuthenticationFailed|AuthorizationFailure|AuthorizationPermissionMismatch|ContainerNotFound|BlobNotFound|ResourceNotFound|InvalidResourceName|AccountIsDisabled)\b",
               "config_error", P, CAUSE, MEDIUM,
               "the object store refused the request (credentials, permissions, a bucket or key that does not exist): fix the config"),
    FamilyRule("storage.object_unavailable", r"An error occurred \((?:SlowDown|ServiceUnavailable|InternalError|InternalServerError|RequestTimeout|Throttl\w*|TooManyRequests|RequestLimitExceeded|ServerBusy|OperationTimedOut|50[0234]|429|408)\)"
                                             r"|(?:exceptions|errors|retry)\.\w+: (?:408|429|50[0234]) [A-Z]+ |HttpError: .*, (?:408|429|50[0234])$|HTTP Error (?:408|429|50[0234]): "
                                             r"|The requested URL returned error: (?:408|429|50[0234])\b|(?i:status[ _]code|HTTP (?:status|response code)|response code)['\"]?[:=,]? ?(?:408|429|50[0234])\b"
                                             r"|(?:ErrorCode:|azure\.core\.exceptions\.\w+: \()(?:ServerBusy|OperationTimedOut|InternalError|ServiceUnavailable)\b",
               "object_store", T, CAUSE, MEDIUM, "the remote store or service was busy or failed on its side; restart"),
)

SPACE: tuple[FamilyRule, ...] = (
    # --- storage space ------------------------------------------------------------------------
    FamilyRule("storage.full", r"(?i)No space left on device|Disk quota exceeded|\[Errno (?:28|122)\]|\bENOSPC\b|\bEDQUOT\b|quota exceeded|over quota|out of disk space|(?:not enough|insufficient) (?:free )?(?:disk )?space\b|write failed, (?:user|group|project) (?:block|file) limit reached|exceed(?:s|ed)? (?:\w+ ){0,2}quota\b|(?:file ?system|disk|device) is full\b",
               "disk_full", P, CAUSE, MEDIUM, _TIP_FULL),

)
