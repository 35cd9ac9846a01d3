"""What the network, collective and storage families decide beyond a line's class: the error type
the policy and the user see, the node a local fault names, and the look-alikes that must stay silent.

The probe rows (family_probe.tsv) check the class of many wordings; these check the parts a class
alone does not show.
"""

from __future__ import annotations

import pytest

from sidecar.classify import FailureClass, LineClassifier, load_monitoring_preset
from sidecar.classify.model import Role

CLS = LineClassifier(load_monitoring_preset("megatron_production"))
T, P = FailureClass.TRANSIENT, FailureClass.PERMANENT

DECIDED = [
    # a local disk is the node's hardware: the node it names is excluded on the next attempt
    ("Oct  8 14:03:21 gpu-b-07 kernel: nvme nvme1: controller is down; will reset: CSTS=0xffffffff, PCI_STATUS=0xffff",
     "host_hw", T, "gpu-b-07"),
    ("Oct  8 14:03:21 gpu-b-07 kernel: sd 2:0:0:0: [sdb] tag#7 Add. Sense: Unrecovered read error - auto reallocate failed",
     "host_hw", T, "gpu-b-07"),
    # an object store's answer decides: throttling and server errors pass, a refused request repeats
    ("botocore.exceptions.ClientError: An error occurred (SlowDown) when calling the PutObject operation "
     "(reached max retries: 4): Please reduce your request rate.", "object_store", T, None),
    ("google.api_core.exceptions.ServiceUnavailable: 503 GET https://storage.googleapis.com/storage/v1/b/ckpts/o: "
     "We encountered an internal error. Please try again.", "object_store", T, None),
    ("botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied",
     "config_error", P, None),
    ("curl: (22) The requested URL returned error: 403", "config_error", P, None),
    # space named only by its code inside an I/O error
    ("LustreError: 30212:0:(vvp_io.c:1418:vvp_io_commit_write()) Write page 17 of inode ffff9a3c8d2e1a00 failed -122",
     "disk_full", P, None),
    ("safetensors_rust.SafetensorError: Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
     "message: \"No space left on device\" })", "disk_full", P, None),
    # NCCL refusing a call is a bug or a config error, not a network fault
    ("RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1333, invalid usage "
     "(run with NCCL_DEBUG=WARN for details), NCCL version 2.18.1", "nccl_config", P, None),
    ("gpu-a-12:123456:123501 [0] NCCL WARN NET/IB : req 0/1 tag 7 peer 10.0.0.3<50123> collective mismatch error, "
     "local size 1048576 remote size 524288", "nccl_config", P, "gpu-a-12"),
    ("gpu-node-03:1201:1201 [0] NCCL WARN Bootstrap : no socket interface found", "nccl_config", P, "gpu-node-03"),
    ("ValueError: Error initializing torch.distributed using env:// rendezvous: environment variable MASTER_ADDR "
     "expected, but not set", "config_error", P, None),
]


@pytest.mark.parametrize("line,error_type,klass,node", DECIDED, ids=lambda v: str(v)[:40])
def test_error_type_class_and_node(line, error_type, klass, node):
    hit = CLS.classify(line, 1)
    assert hit is not None, line
    assert (hit.error_type, hit.failure_class, hit.node) == (error_type, klass, node), hit
    assert hit.role is Role.CAUSE


SILENT = [
    # ethtool's counters carry a driver's event names
    "     tx_timeout: 0",
    # the kernel's soft-quota warning: writes still succeed (the hard limit's "write failed" is the failure)
    "Oct  8 14:03:21 gpu-b-07 kernel: sda1: warning, user block quota exceeded.",
    # s3fs-fuse checks for an object with a HEAD that may find none
    "s3fs: [INF] curl.cpp:RequestPerform(2389): HTTP response code 404 was returned, returning ENOENT",
    # a program that says it will try again copes; ports that are up
    "Connection to the object store failed, will try again in 5s",
    "        State: Active",
    "                        state:                  PORT_ACTIVE (4)",
    "nvme nvme0: Shutdown timeout set to 10 seconds",
    "[gpu-a-12:123456] mca_base_component_repository_open: unable to open mca_btl_openib: librdmacm.so.1: "
    "cannot open shared object file: No such file or directory (ignored)",
]


@pytest.mark.parametrize("line", SILENT, ids=lambda v: v[:40])
def test_look_alikes_stay_silent(line):
    assert CLS.classify(line, 1) is None
