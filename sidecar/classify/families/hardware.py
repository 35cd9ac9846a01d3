"""GPU, driver and host hardware faults, in every source's form (NVRM, NVML/nvidia-smi, DCGM, CUDA runtime, MCE/EDAC)."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, LOW, MEDIUM, T, TIP_NODE


RULES: tuple[FamilyRule, ...] = (
    # --- GPU, driver and host hardware, in every source's form -------------------------------
    FamilyRule("gpu.xid", r"NVRM: Xid \(", "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.driver", r"(?i)NVRM: .*(?:error|fail|fallen|lost|fatal|timeout|timed out|\bRC\b|reset|GSP|mismatch|invalid|crash)",
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.nvml", r"(?i)\bNVML\b.*(?:Unknown Error|GPU is lost|fail|mismatch|not found|Insufficient)|Unable to determine the device handle for GPU|RmInitAdapter failed|rm_init_adapter failed|nvidia-smi has failed|No devices were found|\bERR!|GPU requires reset|GPU is lost|GPU \S+ (?:is lost|has fallen off)|Driver/library version mismatch|\bnvml error\b|NVIDIA driver not loaded|nvml.{0,20}driver not loaded|NVML_SUCCESS == \w+ INTERNAL ASSERT|NVML_ERROR_[A-Z_]+|DCGM_FR_\w+|(?:uncorrectable|double[- ]bit|\bDBE\b).{0,40}(?:ECC|memory) errors?|row[- ]remap\w*(?: \w+)? fail|Remapping Failure Occurred *: *Yes|pending row[- ]remap|\bdcgmi? diag\b.*\bFail(?:ed)?\b|nvidia-persistenced\S*: .*(?:[Ff]ail|error)",
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.fabric", r"(?i)fabric ?manager.*(?:not running|fail|error|state|in progress|uninitiali[sz]ed|not started)|cudaErrorSystemNotReady|system not yet initialized|CUDA_ERROR_SYSTEM_NOT_READY|NVSwitch.*(?:error|fatal|fail)|NVLink.*(?:error|fatal|fail|down|inactive)",
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.runtime", r"(?i)cudaError(?:ECCUncorrectable|HardwareStackError|IllegalInstruction|LaunchFailure|Contained|NoDevice|DevicesUnavailable|Unknown|InitializationError|LaunchTimeout|IllegalAddress)|CUDA(?: driver)? error: (?:unknown error|uncorrectable|hardware|unspecified launch failure|an illegal instruction|initialization error|no CUDA-capable device|all CUDA-capable devices are busy|CUDA-capable device\(s\) is/are busy|the launch timed out|invalid device ordinal)|hardware error|ECC error|CUDA_ERROR_(?:ECC_UNCORRECTABLE|HARDWARE_STACK_ERROR|LAUNCH_FAILED|NO_DEVICE|UNKNOWN)|Memory access fault by GPU|HSA_STATUS_ERROR|hipError(?:NoDevice|LaunchFailure|Unknown|IllegalAddress)|amdgpu.*(?:fault|reset|timeout)|\bcuda[A-Z]\w*\(\) failed: \d+",
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.library", r"CUBLAS_STATUS_(?:EXECUTION_FAILED|INTERNAL_ERROR|NOT_INITIALIZED)|CUDNN_STATUS_(?:EXECUTION_FAILED|INTERNAL_ERROR|MAPPING_ERROR|NOT_INITIALIZED)|NCCL WARN Cuda failure",
               "cuda_error", T, CAUSE, LOW, "a CUDA library failed on the device; restart once, a repeat without progress stops"),
    FamilyRule("host.hardware", r"(?i)\[Hardware Error\]|AER: (?:Multiple )?Uncorrect(?:ed|able)|severity=Uncorrected|machine check|\bMCE\b.*(?:error|exception)|EDAC .*(?:\bUE\b|uncorrect|fatal)|uncorrected (?:hardware |memory )*error|Memory failure: |soft lockup|hard LOCKUP|self-detected stall|Kernel panic|kernel BUG at|BUG: unable to handle|NMI received for unknown reason|\bOops: [0-9a-f]{4} \[#\d+\]",
               "host_hw", T, CAUSE, MEDIUM, TIP_NODE),

)
