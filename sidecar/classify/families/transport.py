"""Transport libraries (InfiniBand/RoCE, libfabric/OFI, UCX, NIC drivers): their own errors say where it failed."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, MEDIUM, T

RULES: tuple[FamilyRule, ...] = (
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
)
