"""The training program's own failures: loss health, checkpoints, native asserts, model files, data."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, HIGH, LOW, MEDIUM, P, T, TIP_CKPT, TIP_NAN


RULES: tuple[FamilyRule, ...] = (
    # --- training health ------------------------------------------------------------------------
    FamilyRule("health.nan_iteration", r"(?:^|[^A-Za-z])loss(?: value)?['\"]?(?:\s*[:=]\s*|\s+)[-+]?(?:nan|NaN|NAN|inf|Inf|INF)\b",
               "nan_loss", P, CAUSE, HIGH, TIP_NAN, beats_ignore=True),
    FamilyRule("health.nan", r"(?i)loss (?:is|became|was) (?:nan|inf|not finite)|non-finite loss|\bnan loss\b|NaN or Inf (?:in|detected)|(?:found|detected|contains) (?:a )?(?:nan|inf)\b|\bnan detected",
               "nan_loss", P, CAUSE, MEDIUM, TIP_NAN),
    FamilyRule("health.loss_scale", r"(?i)loss[ _]scale.{0,20}minimum|minimum loss scale|cannot decrease (?:loss )?scale|loss scale.*underflow",
               "nan_loss", P, CAUSE, HIGH, TIP_NAN),
    # "checkpoint" not "checkpointing": transformers' "`use_cache=True` is incompatible with gradient checkpointing"
    FamilyRule("health.checkpoint_mismatch", r"(?i)size mismatch for \S+|Missing key\(s\) in state_dict|Unexpected key\(s\) in state_dict|Error\(s\) in loading state_dict|copying a param with shape|checkpoint(?:[^i]|$).*(?:mismatch|do(?:es)? not match|incompatible)|(?:mismatch|do(?:es)? not match|incompatible).*checkpoint(?:[^i]|$)",
               "checkpoint_error", P, CAUSE, MEDIUM, TIP_CKPT),
    FamilyRule("health.checkpoint_unreadable", r"(?i)(?:unable|failed|cannot|can't) to load .{0,40}\bcheckpoint|UnicodeDecodeError|UnpicklingError|invalid load key|PytorchStreamReader failed|checkpoint\S*.{0,80}\b(?:is|was) (?:corrupt(?:ed)?|truncated|incomplete)\b|failed finding central directory|not a zip (?:file|archive)|BadZipFile|Ran out of input|HeaderTooLarge|SafetensorError|incomplete metadata",
               "checkpoint_error", P, CAUSE, MEDIUM, TIP_CKPT),
    # a Rust library (tokenizers, safetensors) panicked: its own bug or its input, repeated on restart
    FamilyRule("code.panic", r"\bthread '[^']*' panicked at ",
               "code_error", P, CAUSE, MEDIUM, "a native library panicked on its input: check the data or tokenizer files, or the library version"),
    FamilyRule("code.native_assert", r"Assertion `[^`]*` failed|: Assertion .* failed\.$",
               "device_assert", P, CAUSE, MEDIUM, "a kernel/native assertion (often an index out of range: bad data or vocab size); a restart repeats it"),
    FamilyRule("config.model_files", r"Can't load (?:the )?(?:tokenizer|config|model|weights)|does not appear to have a file named|is not a valid model identifier|not a local folder and is not a valid",
               "config_error", P, CAUSE, MEDIUM, "the model or tokenizer named in the config cannot be found: check its name/path"),
    FamilyRule("net.http", r"couldn't connect to|\b5\d\d Server Error|Service Unavailable|Bad Gateway|Gateway Time-?out|\b429 Client Error|Too Many Requests|Max retries exceeded with url|HTTPSConnectionPool|Read timed out|Connection aborted",
               "network", T, CAUSE, LOW, "a download or remote service failed; restart"),
    FamilyRule("data.missing", r"(?i)\b(?:error|fatal|critical)\b.{0,80}\b(?:file|path|directory|tokenizer|model|checkpoint|dataset)\b.{0,80}\b(?:not found|does not exist|is missing)|dataset.*(?:not found|does not exist|missing)|(?:not found|does not exist).*dataset|\.idx\b.*\.bin\b",
               "data_missing", P, CAUSE, LOW, "the training data is not where the config says"),
)
