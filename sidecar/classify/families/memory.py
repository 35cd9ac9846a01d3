"""Host, shared and device memory exhausted."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, MEDIUM, P

RULES: tuple[FamilyRule, ...] = (
    # --- memory --------------------------------------------------------------------------------
    FamilyRule("memory.host", r"DefaultCPUAllocator: can't allocate memory|[Cc]annot allocate memory|\[Errno 12\]|std::bad_alloc|\bMemoryError\b|invoked oom-killer|Memory cgroup out of memory|killed due to memory pressure|running low on memory|[Ee]xceeded (?:job |step )?memory limit|\boom[-_]kill(?:er)?\b|OOM[ -][Kk]ill|Out of memory: Kill|: Out Of Memory\b",
               "host_oom", P, CAUSE, MEDIUM,
               "host memory ran out: lower the data loader workers/prefetch or the micro batch, or ask for more memory per node"),
    FamilyRule("memory.shm", r"(?i)insufficient shared memory|(?:error|fail\w*) (?:while |to )?(?:creat|allocat|open|map)\w* (?:a |the )?shared memory|out of shared memory|shared memory limit|/dev/shm.*(?:No space|full)|(?:failed to|unable to|cannot|could not) (?:extend|create|open|map|allocate|truncate)\S* \S*/dev/shm",
               "shm", P, CAUSE, MEDIUM, "raise the shared memory limit (container --shm-size) or use fewer loader workers"),
    FamilyRule("memory.device", r"(?i)\b(?:CUDA|HIP|XPU|NPU|GPU|device) out of memory|Failed to CUDA (?:calloc|malloc|host alloc)|cudaMalloc\w* failed|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|hipErrorOutOfMemory|out of memory on device|(?:CUDA|Cuda|HIP)(?: driver)?(?: error| failure(?: \d+)?|\])?:? '?out of memory"
               # XLA's allocator (JAX, TensorFlow): "RESOURCE_EXHAUSTED: Out of memory while trying to allocate N bytes"
               r"|RESOURCE_EXHAUSTED: Out of memory|Out of memory while trying to allocate",
               "oom", P, CAUSE, MEDIUM, "the model does not fit: lower the micro batch, recompute activations, or add parallelism"),

)
