"""GPU, driver and host hardware faults, in every source's form.

Each rule reads one kind of source by its own vocabulary and message structure, so that lines of
that source nobody wrote down are read too:
- the NVIDIA kernel driver (``NVRM:`` lines: the Xid catalogue, GSP/RM, probe and init failures),
  NVML and nvidia-smi (its errors and the ``-q`` fields that say a GPU needs a reset), DCGM (the
  DCGM_FR_* message texts, ``dcgmi diag``/``health`` tables), the fabric manager's own log and
  NVLink/NVSwitch;
- the CUDA runtime's and driver API's error strings as frameworks print them (PyTorch, Triton,
  XLA, HIP), and the status codes of cuBLAS/cuDNN/cuFFT/cuSOLVER/cuSPARSE and hipBLAS/rocBLAS/MIOpen;
  code built for another GPU or driver (permanent); AMD's amdgpu driver and ROCm runtime (its fatal
  callbacks: "Memory access fault by GPU node-N", "HW Exception by GPU node-N"), Intel's Level Zero;
- the host kernel: machine checks, APEI/GHES, EDAC, PCIe AER/DPC, oopses, lockups, hung tasks; the BMC's
  event log.
"""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, LOW, MEDIUM, P, SYMPTOM, T, TIP_NODE

# NVML's own error strings (nvmlErrorString) for a device fault, an init that failed, and DCGM's log of
# NVML return codes ("Got nvmlSt 15 from nvmlDeviceGetRetiredPages": 8 power, 9 driver not loaded,
# 11 IRQ, 14 infoROM, 15 GPU lost, 16 reset required, 17 blocked by the OS, 18 RM version mismatch,
# 999 unknown; 3 "not supported" is routine)
_NVML = (r"Failed to (?:initialize|properly shut down) NVML|GPU access blocked by the operating system|Insufficient External Power"
         r"|Corrupted infoROM|Interrupt request issue|RM has detected an NVML/RM version mismatch|GPU requires restart"
         r"|\bGot nvmlSt (?:8|9|11|14|15|16|17|18|999)\b")
# nvidia-smi -q fields whose value says the GPU needs a reset or a drain ("Pending Page Blacklist :
# Yes", "Remapping Failure Occurred : Yes", 550+: "Reset Required : Yes")
_SMI_FIELD = (r"^\s*(?:Pending Page (?:Blacklist|Retirement)|Remapping Failure Occurred|Reset Required|Drain and Reset Recommended)"
              r"\s*:\s*Yes\b|^\s*[A-Z][\w ./()-]*:\s*\[(?:Unknown Error|GPU is lost|GPU requires reset)\]\s*$")
# DCGM's failure texts (dcgm_errors.h, what dcgmi and nv-hostengine print) and its result tables
# ("| Memory | Fail - GPU: 2 |", "| Overall Health: Failure |"; dcgmi health "| -> 0 | Failure |")
_DCGM = (r"DCGM_FR_\w+|\bdcgmi? diag\b.*\bFail(?:ed)?\b|\bOverall (?:Health|Result|Status): *Fail(?:ed|ure)?\b"
         r"|^\s*\|[^|]*\|\s*Fail(?:ed|ure)?(?: - |\s*\|)|GPU \d+ had uncorrectable memory errors|pages are pending retirement"
         r"|has pending row remappings|row remapping failed|corrupt InfoROM|faulty memory elements|Uncontained error"
         r"|is no longer bound to a CUDA context|\bNvLink link \d+ is (?:currently )?down|fatal errors on NvSwitch"
         r"|retired pages (?:due to DBEs )?have been detected")
# The CUDA runtime's error strings (cudaGetErrorString, what every framework prints after "CUDA
# error: ", "Triton Error [CUDA]: ", "CUDA_ERROR_ILLEGAL_ADDRESS: "; HIP prints the same texts)
# that point at the device; the generic ones only after a CUDA/HIP prefix.
_CUDA_STRINGS = (r"an illegal memory access was encountered|unspecified launch failure|uncorrectable ECC error encountered"
                 r"|an illegal instruction was encountered|the launch timed out and was terminated|hardware stack error"
                 r"|CUDA-capable devices? (?:\(s\) )?(?:is/are|are|is) busy or unavailable|no (?:CUDA|ROCm|HIP)-capable device is detected"
                 r"|uncorrectable NVLink error|CUDA driver initialization failed|system has unsupported display driver / cuda driver combination"
                 r"|CUDA unknown error - this may be due to"
                 r"|(?:CUDA|HIP|\[CUDA\]|\[HIP\]|cuda runtime)(?: driver)? (?:error|Error|failure)(?: \(?\d+\)?)? ?:? '?(?:unknown error|initialization error|invalid device ordinal)")

RULES: tuple[FamilyRule, ...] = (
    # --- NVIDIA driver, NVML/nvidia-smi, DCGM, fabric manager -----------------------------------
    # the driver's "NVRM: Xid (PCI:..): 79, ...", and monitors' "Xid 79", "XID error 79", "XID 79 detected"
    FamilyRule("gpu.xid", r"NVRM: Xid \(|\bX(?:id|ID)(?: error)?:? \d+\b|fallen off the bus|fell off the bus",
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.driver", r"(?i)NVRM: .*(?:error|fail|fallen|lost|fatal|timeout|timed out|\bRC\b|reset|GSP|mismatch|invalid|crash"
               r"|cannot|can't|unable|(?:not|were) (?:be )?initiali[sz]ed|No NVIDIA (?:devices|GPU)|probe routine|bad register"
               r"|\bNV_ERR_|assert|power cables|uncorrect|\bDBE\b|unrecoverable|reboot required|\bhung\b|stuck)",
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.nvml", r"(?i)\bNVML\b.*(?:Unknown Error|GPU is lost|fail|mismatch|not found|Insufficient)|Unable to determine the device handle for GPU|RmInitAdapter failed|rm_init_adapter failed|nvidia-smi has failed|No devices were found|\bERR!|GPU requires reset|GPU is lost|GPU \S+ (?:is lost|has fallen off)|Driver/library version mismatch|\bnvml error\b|NVIDIA driver not loaded|nvml.{0,20}driver not loaded|NVML_SUCCESS == \w+ INTERNAL ASSERT|NVML_ERROR_[A-Z_]+|NVMLError_(?:GpuIsLost|DriverNotLoaded|Unknown|GpuRequiresReset|CorruptedInforom|IrqIssue|LibRmVersionMismatch)|(?:uncorrectable|double[- ]bit|\bDBE\b).{0,40}(?:ECC|memory) errors?|row[- ]remap\w*(?: \w+)? fail|pending row[- ]remap|nvidia-persistenced\S*: .*(?:[Ff]ail|error)|"
               + _NVML + "|" + _SMI_FIELD + "|" + _DCGM,
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    # the fabric manager's own log: "[Mar 05 2024 10:12:03] [ERROR] [tid 2212] <message>"
    FamilyRule("gpu.fabric", r"(?i)fabric ?manager.*(?:not running|fail|error|state|in progress|uninitiali[sz]ed|not started)|cudaErrorSystemNotReady|system not yet initialized|CUDA_ERROR_SYSTEM_NOT_READY|NVSwitch.*(?:error|fatal|fail)|NVLink.*(?:error|fatal|fail|down|inactive)"
               r"|^\[\w{3} \d\d \d{4} [\d:]+\] \[(?:ERROR|FATAL)\] \[tid \d+\]",
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    # --- CUDA/HIP runtimes and libraries as frameworks print them -----------------------------------
    # code built for another GPU, driver or library version, a GPU library that cannot be loaded, or
    # code asking what the GPU cannot do: a restart on the same kind of node repeats it (before
    # gpu.runtime: "HIP error: invalid device function"; before gpu.library: "NCCL WARN Cuda failure
    # 'CUDA driver version is insufficient for CUDA runtime version'")
    FamilyRule("gpu.software", r"(?i)CUDA driver version is insufficient|forward compatibility was attempted on non supported HW|with CUDA capability sm_\d+ is not compatible with the current PyTorch installation|NVIDIA driver on your system is too old|Unable to load any of \{lib(?:cu|nv)\w+|Could not load library lib(?:cu|nv)\w+|Invalid handle\. Cannot load symbol cu\w+|CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED|rocBLAS error: Cannot read \S+|for GPU arch : gfx\w+|no kernel image is available for execution on the device|cudaErrorNoKernelImageForDevice|CUDA_ERROR_NO_BINARY_FOR_GPU|hipErrorNoBinaryForGpu|PTX was compiled with an unsupported toolchain|cudaErrorUnsupportedPtxVersion|CUDA_ERROR_UNSUPPORTED_PTX_VERSION|a PTX JIT compilation failed|device kernel image is invalid|(?:CUDA|HIP) error: invalid device function|hipErrorInvalidDeviceFunction|CUDA driver is a stub library|too many resources requested for launch|cudaErrorLaunchOutOfResources|(?:CU|HIP)BLAS_STATUS_(?:NOT_SUPPORTED|ARCH_MISMATCH|INVALID_VALUE)|miopenStatus(?:BadParm|NotImplemented|UnsupportedOp)|MIOpen Error: .*(?:No suitable algorithm|not (?:supported|implemented|applicable)|[Uu]nsupported)|hipBLASLt error: Heuristic Fetch Failed|cuBLAS\w* (?:[Ee]rror|failure):? (?:the requested functionality is not supported|an absent device architectural feature is required|an invalid numeric value was used as an argument)|No execution plans (?:support|found|built)|CUDNN_STATUS_(?:BAD_PARAM|NOT_SUPPORTED|ARCH_MISMATCH|VERSION_MISMATCH|RUNTIME_PREREQUISITE_MISSING|LICENSE_ERROR)\w*",
               "env_error", P, CAUSE, MEDIUM,
               "the GPU software does not fit this GPU or driver, or misses a library: match the build (CUDA version, "
               "TORCH_CUDA_ARCH_LIST, container image) to the nodes' GPUs and driver, or change the unsupported setting"),
    FamilyRule("gpu.runtime", r"(?i)cudaError(?:ECCUncorrectable|HardwareStackError|IllegalInstruction|LaunchFailure|Contained|NoDevice|DevicesUnavailable|Unknown|InitializationError|LaunchTimeout|IllegalAddress|SystemDriverMismatch|NvlinkUncorrectable)|CUDA(?: driver)? error: (?:unknown error|uncorrectable|hardware|unspecified launch failure|an illegal instruction|initialization error|no CUDA-capable device|all CUDA-capable devices are busy|CUDA-capable device\(s\) is/are busy|the launch timed out|invalid device ordinal)|ECC errors? (?:detected|encountered|occurred)|(?:un)?contained ECC error|Unexpected error from cudaGetDeviceCount|CUDA_ERROR_(?:ECC_UNCORRECTABLE|HARDWARE_STACK_ERROR|LAUNCH_FAILED|NO_DEVICE|UNKNOWN|ILLEGAL_ADDRESS|ILLEGAL_INSTRUCTION|LAUNCH_TIMEOUT|NVLINK_UNCORRECTABLE)|Memory access fault by GPU|HSA_STATUS_ERROR|hipError(?:NoDevice|LaunchFailure|Unknown|IllegalAddress|ECCNotCorrectable|HardwareStackError)|amdgpu.*(?:fault|reset|timeout|uncorrect|poison|\bhang\b|hung|failed to (?:respond|resume|recover)|not done with your previous command|(?:ip_init|hw_init of IP block \S+|ring \S+ test) failed|Fatal error during GPU init)|HW Exception by GPU node-\d+|\bcuda[A-Z]\w*\(\) failed: \d+|(?:ZE|UR)_RESULT_ERROR_DEVICE_LOST|"
               + _CUDA_STRINGS,
               "gpu_hw", T, CAUSE, MEDIUM, TIP_NODE),
    FamilyRule("gpu.library", r"(?:CUBLAS|CUDNN|CUSOLVER|CUSPARSE|HIPBLAS)_STATUS_(?:EXECUTION_FAILED|INTERNAL_ERROR|MAPPING_ERROR|NOT_INITIALIZED)|miopenStatus(?:InternalError|NotInitialized)|rocblas_status_internal_error|cuBLAS\w* (?:[Ee]rror|failure):? (?:the GPU program failed to execute|an internal operation failed|an access to GPU memory space failed|the library was not initialized)|CUFFT_(?:INTERNAL_ERROR|EXEC_FAILED)|NCCL WARN Cuda failure",
               "cuda_error", T, CAUSE, LOW, "a CUDA library failed on the device; restart once, a repeat without progress stops"),
    # --- host kernel ------------------------------------------------------------------------------
    FamilyRule("host.hardware", r"(?i)hardware error|AER: (?:Multiple )?Uncorrect(?:ed|able)|severity=Uncorrected|AER: .*recovery failed|DPC: (?:containment event|unmasked uncorrectable)|machine check|\bMCE\b.*(?:error|exception)|EDAC .*(?:\bUE\b|uncorrect|fatal)|uncorrected (?:hardware |memory )*error|Memory failure: |soft lockup|hard LOCKUP|self-detected stall|Kernel panic|kernel BUG at|BUG: (?:unable to handle|kernel NULL pointer|Bad page|scheduling while atomic|workqueue lockup)|general protection fault(?:, probably for|: [0-9a-f]{4} \[#)|invalid opcode: [0-9a-f]{4} \[#|Unable to handle kernel|Internal error: Oops|NMI received for unknown reason|\bOops: [0-9a-f]{4} \[#\d+\]"
               # the BMC's event log (ipmitool sel list: "1 | 03/10/2024 | 04:00:00 | Memory #0x87 | Uncorrectable ECC | Asserted")
               r"|\| *(?:Uncorrectable ECC|IERR|Machine Check Exception|PCI [PS]ERR|Bus (?:Fatal|Uncorrectable) [Ee]rror)\b[^|]*\| *Asserted",
               "host_hw", T, CAUSE, MEDIUM, TIP_NODE),
    # the kernel reports these at its INFO level ("INFO: task python:123 blocked for more than 120
    # seconds.", "rcu: INFO: rcu_sched detected stalls on CPUs/tasks:"); a slow filesystem can print
    # one and recover, so it ends the job only when confirmed by a failure or a stall (low), and
    # a cause printed after it (a driver's Xid, a filesystem's eviction) is the root (a symptom)
    FamilyRule("host.stall", r"\bINFO: task \S+ blocked for more than \d+ seconds|\brcu_\w+ (?:self-)?detected stalls? on|\brcu_\w+ kthread starved for \d+ jiffies",
               "host_hw", T, SYMPTOM, LOW, TIP_NODE, beats_ignore=True),

)
