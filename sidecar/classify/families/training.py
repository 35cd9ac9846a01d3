"""The training program's own failures: loss health, checkpoints, native asserts, model files, data."""

from __future__ import annotations

from sidecar.classify.families.rule import CAUSE, FamilyRule, HIGH, LOW, MEDIUM, P, T, TIP_CKPT, TIP_NAN


# A loss value that is NaN/Inf in a step line, under any logger's metric name: "lm loss: nan"
# (Megatron), "'loss': nan" (Transformers), "loss=nan" (Lightning's bar), "loss/train/total: nan"
# (Composer), "train/loss: NaN", "Loss: nan" (PyTorch's examples). The prefilter carries the same words.
NAN_LOSS = r"(?:^|[^A-Za-z])[Ll]oss(?:/[\w.-]+)*(?: value)?['\"]?(?:\s*[:=]\s*|\s+)[-+]?(?:nan|NaN|NAN|inf|Inf|INF)\b"

RULES: tuple[FamilyRule, ...] = (
    # --- training health ------------------------------------------------------------------------
    FamilyRule("health.nan_iteration", NAN_LOSS, "nan_loss", P, CAUSE, HIGH, TIP_NAN, beats_ignore=True),
    # the frameworks' own checks: torch's clip_grad_norm_(error_if_nonfinite), autograd's anomaly
    # mode, Lightning's detect_nan_parameters, numpy/JAX's debug_nans
    FamilyRule("health.nan", r"(?i)loss (?:is|became|was) (?:nan|inf|not finite)|non-finite loss|\bnan loss\b|NaN or Inf (?:in|detected)|(?:found|detected|contains) (?:a )?(?:nan|inf)\b|\bnan detected"
               r"|\bis non-finite, so it cannot\b|\b(?:norm|loss|grad(?:ient)?s?) (?:is|are|was|were|became) non-finite\b|\bdetected (?:nan|inf) and/or (?:nan|inf) values|\breturned (?:nan|inf) values\b|invalid value \((?:nan|inf)\) encountered",
               "nan_loss", P, CAUSE, MEDIUM, TIP_NAN),
    FamilyRule("health.loss_scale", r"(?i)loss[ _]scale.{0,20}minimum|minimum loss scale|cannot decrease (?:loss )?scale|loss scale.*underflow",
               "nan_loss", P, CAUSE, HIGH, TIP_NAN),
    # "checkpoint" not "checkpointing": transformers' "`use_cache=True` is incompatible with gradient checkpointing"
    FamilyRule("health.checkpoint_mismatch", r"(?i)size mismatch for \S+|Missing key\(s\) in state_dict|Unexpected key\(s\) in state_dict|Error\(s\) in loading state_dict|copying a param with shape|checkpoint(?:[^i]|$).*(?:mismatch|do(?:es)? not match|incompatible)|(?:mismatch|do(?:es)? not match|incompatible).*checkpoint(?:[^i]|$)"
               # torch.distributed.checkpoint's planner, Megatron's dist_checkpointing, orbax/tensorstore
               r"|(?-i:(?:Missing|Unexpected) key(?:s|\(s\))? in (?:the )?checkpoint\b|\(not found in (?:the )?checkpoint\)|Invalid access pattern for ShardedTensor)|(?:size|shape|dtype) mismatch (?:between saved|for loaded|for key)|not compatible with the stored (?:shape|dtype)|checkpoint\b.{0,120}\bbut the current\b",
               "checkpoint_error", P, CAUSE, MEDIUM, TIP_CKPT),
    FamilyRule("health.checkpoint_unreadable", r"(?i)(?:unable|failed|cannot|can't) to load .{0,40}\bcheckpoint|UnicodeDecodeError|UnpicklingError|invalid load key|PytorchStreamReader failed|checkpoint\S*.{0,80}\b(?:is|was) (?:corrupt(?:ed)?|truncated|incomplete)\b|failed finding central directory|not a zip (?:file|archive)|BadZipFile|Ran out of input|HeaderTooLarge|SafetensorError|incomplete metadata"
               # torch.load(weights_only=True) refusing a pickle's globals; safetensors' header; numpy's pickles
               r"|Weights only load failed|WeightsUnpickler error|Unsupported global: GLOBAL|not an allowed global|Error while deserializing header|MetadataIncompleteBuffer|pickle data was truncated|Failed to interpret file \S+ as a pickle|file might be corrupted",
               "checkpoint_error", P, CAUSE, MEDIUM, TIP_CKPT),
    # resuming was asked for and there is nothing to resume from: Megatron's --exit-on-missing-checkpoint,
    # a loader that refuses to start from scratch ("no checkpoint found ..., cannot resume")
    FamilyRule("health.checkpoint_missing", r"'--exit-on-missing-checkpoint' set|(?i:no (?:valid )?checkpoints? (?:was |were )?found\b.{0,120}\b(?:cannot|can't|unable to) resume)",
               "checkpoint_error", P, CAUSE, MEDIUM, "resuming found no checkpoint: check --load / the checkpoint directory, or start from scratch on purpose"),
    # a Rust library (tokenizers, safetensors) panicked: its own bug or its input, repeated on restart
    FamilyRule("code.panic", r"\bthread '[^']*' panicked at ",
               "code_error", P, CAUSE, MEDIUM, "a native library panicked on its input: check the data or tokenizer files, or the library version"),
    FamilyRule("code.native_assert", r"Assertion `[^`]*` failed|: Assertion .* failed\.$",
               "device_assert", P, CAUSE, MEDIUM, "a kernel/native assertion (often an index out of range: bad data or vocab size); a restart repeats it"),
    FamilyRule("config.model_files", r"Can't load (?:the )?(?:tokenizer|config|model|weights)|does not appear to have a file named|[Nn]o file named \S+|is not a valid model identifier|not a local folder and is not a valid",
               "config_error", P, CAUSE, MEDIUM, "the model or tokenizer named in the config cannot be found: check its name/path"),
    FamilyRule("net.http", r"couldn't connect to|\b5\d\d Server Error|Service Unavailable|Bad Gateway|Gateway Time-?out|\b429 Client Error|Too Many Requests|Max retries exceeded with url|HTTPSConnectionPool|Read timed out|Connection aborted",
               "network", T, CAUSE, LOW, "a download or remote service failed; restart"),
    FamilyRule("data.missing", r"(?i)\b(?:error|fatal|critical)\b.{0,80}\b(?:file|path|directory|tokenizer|model|checkpoint|dataset)\b.{0,80}\b(?:not found|does not exist|is missing)|dataset.*(?:not found|does not exist|missing)|(?:not found|does not exist).*dataset|\.idx\b.*\.bin\b",
               "data_missing", P, CAUSE, LOW, "the training data is not where the config says"),
)
