"""Host, shared and device memory exhausted."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, MEDIUM, P

TIP_HOST = "host memory ran out: lower the data loader workers/prefetch or the micro batch, or ask for more memory per node"
TIP_DEVICE = "the model does not fit: lower the micro batch, recompute activations, or add parallelism"

# C++'s abort names the exception it could not handle; when that type is a memory exhaustion the line
# is the cause, not the abort that follows another error (layer.py puts these before the cascade rules).
THROWN: tuple[FamilyRule, ...] = (
    FamilyRule("memory.thrown_host", r"terminate called after throwing an instance of 'std::bad_alloc'",
               "host_oom", P, CAUSE, MEDIUM, TIP_HOST),
    FamilyRule("memory.thrown_device", r"terminate called after throwing an instance of '(?:[\w:]*OutOfMemoryError|thrust::system::detail::bad_alloc)'",
               "oom", P, CAUSE, MEDIUM, TIP_DEVICE),
)

# A line that names shared memory as the reason is the cause, whatever signal it reports ("DataLoader
# worker (pid 12) is killed by signal: Bus error. It is possible that dataloader's workers are out of
# shared memory"): layer.py puts these before the process deaths.
SHM: tuple[FamilyRule, ...] = (
    FamilyRule("memory.shm", r"(?i)insufficient shared memory|(?:error|fail\w*) (?:while |to )?(?:creat|allocat|open|map)\w* (?:a |the )?shared memory|out of shared memory|(?:unable to|cannot|could not|failed to) allocate shared memory|shared memory limit|/dev/shm.*(?:No space|full)|(?:failed to|unable to|cannot|could not) (?:extend|create|open|map|allocate|truncate)\S* \S*/dev/shm",
               "shm", P, CAUSE, MEDIUM, "raise the shared memory limit (container --shm-size) or use fewer loader workers"),
)

RULES: tuple[FamilyRule, ...] = (
    # --- memory --------------------------------------------------------------------------------
    FamilyRule("memory.host", r"DefaultCPUAllocator: (?:can't allocate|not enough) memory|[Cc]annot allocate memory|\[Errno 12\]|std::bad_alloc|\bmemory allocation of \d+ bytes failed|\bMemoryError\b|invoked oom-killer|Memory cgroup out of memory|(?:[Kk]illed|[Tt]erminated)\b.{0,300}\bdue to memory pressure\b|low memory! at or below SIG\w+ limits|sending SIG(?:TERM|KILL) to process \d+ uid \d+ \"[^\"]*\": (?:badness|oom_score)|killed as a result of limit of|\bKilled process \d+ \([^)]*\) total-vm:|\bOOMKilled\b|running low on memory|[Ee]xceeded (?:job |step )?memory limit|\boom[-_]kill(?:er)?\b|OOM[ -][Kk]ill|Out of memory: Kill|: Out Of Memory\b",
               "host_oom", P, CAUSE, MEDIUM, TIP_HOST),
    FamilyRule("memory.device", r"(?i)\b(?:CUDA|HIP|XPU|NPU|GPU|device) out of memory|Failed to CUDA (?:calloc|malloc|host alloc)|cudaMalloc\w* failed|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|hipErrorOutOfMemory|out of memory on device|\bOOM when allocating\b|RESOURCE_EXHAUSTED:.{0,40}(?:out of memory|allocat)|Out of memory while trying to allocate|Ran out of memory in memory space|(?:ZE|UR)_RESULT_ERROR_OUT_OF_DEVICE_MEMORY|\bCU[A-Z]+_(?:STATUS_)?ALLOC_FAILED\b|\bMPS backend out of memory|cuBLAS\w* (?:[Ee]rror|failure):? resource allocation failed|Unable to find a valid cuDNN algorithm|GET was unable to find an engine to execute this computation|(?:CUDA|Cuda|HIP)(?: driver| runtime)?(?: error| failure)?(?: \(?\d+\)?)?(?:\])? ?:? '?out of memory",
               "oom", P, CAUSE, MEDIUM, TIP_DEVICE),

)
