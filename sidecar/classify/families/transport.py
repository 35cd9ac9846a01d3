"""Transport libraries (InfiniBand/RoCE, libfabric/OFI, UCX, NIC drivers): their own errors say where it failed."""

from __future__ import annotations

from sidecar.classify.families.collectives import TIP_MISMATCH
from sidecar.classify.families.rule import CAUSE, FamilyRule, MEDIUM, P, T

# ibv_wc_status_str(): the verbs library's names for a work completion that failed (IBV_WC_*_ERR)
_WC_STATUS = (r"(?:transport|RNR) retry counter exceeded|local (?:length|protection|QP operation|EE context operation|access|RDD violation) error"
              r"|remote (?:access|operation|invalid request|invalid RD request) error|bad response error|response timeout error"
              r"|memory management operation error|invalid EE context (?:number|state)")
# ibv_event_type_str() and the kernel's IB_EVENT_*: a port or device event that breaks the queue pairs on it
_ASYNC_EVENT = (r"I?B[V_]*EVENT_(?:PORT_ERR|DEVICE_FATAL|QP_FATAL|QP_REQ_ERR|QP_ACCESS_ERR|CQ_ERR|SRQ_ERR|PATH_MIG_ERR)\b"
                r"|(?:local|local work queue|SRQ) catastrophic error|QP fatal error|(?:invalid request|local access violation) work queue error")
# A port that is not up, as ibstat ("State: Down", "Physical state: Polling"), ibstatus ("state: 1: DOWN",
# "phys state: 2: Polling") and ibv_devinfo ("state: PORT_DOWN (1)") print it; INIT/Initializing: no subnet manager
# has brought it up. Anchored at the line's start: these tools print one field a line. NHC's check_hw_ib/check_hw_eth
# print only when a port or device is missing or down.
_PORT_STATE = (r"^\s*(?:[Ss]tate|[Pp]hys(?:ical)?[ _]state):\s+(?:\d:\s+)?"
               r"(?:Down|DOWN|PORT_DOWN|Polling|POLLING|Disabled|DISABLED|Initializing|INIT|PORT_INIT|LinkErrorRecovery|LINK_ERROR_RECOVERY)\b"
               r"|\bcheck_hw_(?:ib|eth): |[Ss]ubnet [Mm]anager\b.{0,40}(?:not (?:running|found|responding|present)|lost|fail|down)|\bno (?:subnet manager|SM)\b.{0,20}(?:found|running|present)")

RULES: tuple[FamilyRule, ...] = (
    # NCCL's network plugins report a receive larger than the buffer the peer's collective posted: the ranks
    # called collectives of different sizes (a bug), not a network fault; before the plugin's error words
    FamilyRule("net.mismatch", r"NET/\w+ ?: .*(?:collective mismatch|[Mm]essage truncated)",
               "nccl_config", P, CAUSE, MEDIUM, TIP_MISMATCH),
    # --- transport libraries: their own errors say where it failed (before memory words) -----
    # registering memory for RDMA needs locked memory; a limit too low (ulimit -l, Slurm's propagated
    # RLIMIT_MEMLOCK) fails every start: UCX and Open MPI's openib BTL say so in their own words
    FamilyRule("net.memlock", r"Please set max locked memory|memlock limits? (?:are|is) (?:set )?too low|failed while trying to allocate some locked memory",
               "config_error", P, CAUSE, MEDIUM, "the locked-memory limit is too low for RDMA: raise it (ulimit -l unlimited where the job starts; Slurm propagates the submit shell's limit)"),
    FamilyRule("net.ib", r"(?i)IBV_WC_\w+_ERR|ib_mlx5_log\.c|\(synd 0x[0-9a-f]+ vend 0x|ibv_\w+\S* (?:failed|error)|RETRY_EXC_ERR|"
                         + _WC_STATUS + "|" + _ASYNC_EVENT
                         + r"|mlx\d\w*:? .*(?:port error|link down|error CQE|fatal|syndrome|completion with error|health (?:recovery|compromised|poll failed)|health_try_recover|bad device|internal error|error state)|port \S+ (?:state )?(?:changed to )?down|LINK_DOWN|link (?:is |went |state changed to )?down\b|NET/IB.*(?:error|fail)|completion .*(?:status=|error )(?:[1-46-9]|\d\d)\b"
                         # mlx5's port module (cable/transceiver) events: "Cable plugged" is chatter; the others take the link down
                         r"|Port module event(?:\[error\])?: module \d+, Cable (?:unplugged|error|disabled)"
                         # mlx5's firmware command interface: a command the firmware never answered
                         r"|\b[A-Z_]+\(0x[0-9a-f]+\) timeout\. Will cause a leak|Command completion arrived after timeout",
               "network", T, CAUSE, MEDIUM, "an InfiniBand/RoCE fault (link, cable, NIC); restart, excluding the node if it names one"),
    FamilyRule("net.ib_port", _PORT_STATE,
               "network", T, CAUSE, MEDIUM, "an InfiniBand port is not active (cable, switch or subnet manager); restart excluding the node"),
    # libfabric's providers; the CXI (Slingshot) return codes C_RC_* of a failed transfer as MPICH and libfabric print them
    FamilyRule("net.ofi", r"(?i)NET/OFI .*(?:error|fail)|\bfi_\w+(?:\(\))? (?:failed|returned|error)|fi_cq_readerr|\bFI_E[A-Z]+\b|libfabric.*(?:error|fail|fatal)|\bcxi\w*.*(?:error|fail|fatal|overflow detected)|\bOFI\b.*(?:error|fail)"
                          r"|\bC_RC_(?:UNDELIVERABLE|PT_DISABLED|DROPPED|NO_TARGET_\w+|UNCOR\w*|LINK_DOWN|PTLTE_NOT_FOUND|VNI_NOT_FOUND|CANCELED|ENTRY_NOT_FOUND|NO_MATCH)\b|\bRC_(?:UNDELIVERABLE|PTLTE_NOT_FOUND|NO_TARGET_CONN)\b|- (?:UNDELIVERABLE|PTLTE_NOT_FOUND)\b"
                          r"|\befa \d{4}:[0-9a-f:.]+: .*(?:[Ff]ail|error|timed? ?out)",
               "network", T, CAUSE, MEDIUM, "a libfabric/OFI transport error (Slingshot, EFA); restart"),
    # a NIC's kernel driver: its transmit queue stalled (IPoIB, RoCE, Ethernet), the driver resets it; a bond left without a link
    FamilyRule("net.nic", r"NETDEV WATCHDOG: \S+ .*timed out|\b(?:TX|[Tt]ransmit) (?:timeout|hang) (?:detected|on queue)|transmit queue \d+ timed out|\btransmit timeout\b|Detected (?:Tx|Hardware) Unit Hang|\btx_timeout:? (?:VSI_\w+|recovery level)|transmit timed out|now running without any active interface",
               "network", T, CAUSE, MEDIUM, "a network adapter stalled on the node; restart excluding it if it names one"),
    # UCX: its log's ERROR/FATAL level, and ucs_status_string()'s words for a transport that broke
    FamilyRule("net.ucx", r"UCX\s+(?:ERROR|FATAL)|\[[\w.-]+:\d+:\d+:\d+\]\s+\w+\.c:\d+\s+(?:Fatal|FATAL|Error|ERROR)\b|UCS_ERR_\w+|\bucp_\w+.*(?:failed|error)|\buct_\w+.*(?:error|failed)|Endpoint timeout|Connection reset by remote peer|Destination is unreachable",
               "network", T, CAUSE, MEDIUM, "a UCX transport error; restart"),
)
