"""A logged error by its level and its family's words, when no rule read its wording.

A line the program logged at ERROR, CRITICAL or FATAL (its logger's own level token) whose
message names a family's vocabulary (memory, network, storage, GPU hardware, the data) is that family's
failure, at low confidence: "... | ERROR | fairseq.trainer | OOM during optimization,
irrecoverable". The level gate keeps the words out of INFO/WARNING chatter and of prose; the
benign lines (retries, zero counts, advice) are taken out before any rule.
"""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, LOW, SYMPTOM, FamilyRule, P, T

# The level token of the common formats: logging's "ERROR:name:" and "<time> ERROR ...",
# " - ERROR - " (logging's default format, torchtitan), "| ERROR |" (fairseq, loguru),
# "[ERROR]" (DeepSpeed), "[ERROR|file.py:12]" (Transformers), "[NeMo E ...]", glog/absl
# "E1201 10:00:00.123 123 file.cc:12]", rich's "[05/01/24 10:00:00] ERROR", structlog's
# "[error    ]", logfmt "level=error", a program's "prog: error: ".
LEVEL = (r"(?:^(?:ERROR|CRITICAL|FATAL):[\w.]*:|\| *(?:ERROR|CRITICAL|FATAL) *\||\[(?:ERROR|CRITICAL|FATAL)[\]|]|\[(?:error|critical|fatal) *\]"
         r"|\s-\s(?:ERROR|CRITICAL|FATAL)\s-\s|\[NeMo [EF] |^[EF]\d{4} [\d:.]+ +\d+ [^\]\s]+:\d+\] "
         r"|^\[?[\d/T:.,Z-]+(?: [\d:.,]+)?\]? +(?:ERROR|CRITICAL|FATAL)\b|\blevel=(?:error|fatal|critical)\b|^[\w.-]+: (?:error|fatal): )")

_MEMORY = r"\bOOM\b|(?i:out of memory|out-of-memory|cannot allocate memory|ran out of memory|memory allocation failed|failed to allocate \d+ ?(?:bytes|[KMG]i?B))"
_NETWORK = (r"(?i:connection (?:refused|reset|timed out|aborted|lost)|network is unreachable|no route to host|broken pipe"
            r"|temporary failure in name resolution|name or service not known|could not resolve host"
            r"|(?:download|upload|fetch|request|transfer|connect)\w*\b.{0,80}\btimed? ?out\b)")
# a dataset too small, empty or missing for the run's batch and workers (LLM Foundry, streaming, datasets)
_DATA = (r"(?i:\b(?:dataset|data files?|shards?)\b.{0,80}\b(?:has (?:only )?\d+ (?:samples|examples|rows|shards)\b|is empty|(?:is )?too small"
         r"|not found|does not exist|(?:no|not enough|too few|fewer) (?:samples|examples|documents|shards|data files)))")
_STORAGE = r"(?i:input/output error|stale file handle|read-only file system|transport endpoint is not connected)"
_HARDWARE = (r"(?i:uncorrectable|\bECC errors? (?:detected|encountered)|\bXid\b|nvlink (?:error|is down|inactive)"
             r"|gpu (?:is lost|has fallen off)|hardware error|machine check)")

RULES: tuple[FamilyRule, ...] = (
    FamilyRule("severity.memory", LEVEL + r".*(?:" + _MEMORY + ")", "oom", P, CAUSE, LOW,
               "an error logged about memory running out: lower the micro batch or the loader's memory use"),
    FamilyRule("severity.hardware", LEVEL + r".*(?:" + _HARDWARE + ")", "gpu_hw", T, CAUSE, LOW,
               "an error logged about the GPU or host hardware: restart excluding the node"),
    FamilyRule("severity.storage", LEVEL + r".*(?:" + _STORAGE + ")", "filesystem", T, CAUSE, LOW,
               "an error logged about the file system; restart"),
    FamilyRule("severity.data", LEVEL + r".*(?:" + _DATA + ")", "data_missing", P, CAUSE, LOW,
               "an error logged about the training data: check the data paths, the dataset's size for this batch and world size"),
    FamilyRule("severity.network", LEVEL + r".*(?:" + _NETWORK + ")", "network", T, SYMPTOM, LOW,
               "an error logged about a lost connection; restart"),
)
