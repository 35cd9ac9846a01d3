"""Benign lines that once fired, each beside a failure of the same wording that must still fire.

Each pair pins the rule that tells them apart (a zero count, a name that starts with "nan", a
recomputation technique named "checkpointing", a log level below error), in both shipped presets.
"""

from __future__ import annotations

import pytest

from sidecar.classify import LineClassifier, load_monitoring_preset

PRESETS = ("megatron_production", "generic")

# (benign line, failure line of the same source and words, error_type the failure gets)
PAIRS = (
    # a count of zero is no NaN (health.nan read "found NaN" alone)
    ("Found NaN in 0 of 100 steps", "Found NaN in 3 of 100 steps", "nan_loss"),
    ("NaN detected on 0 of 8 ranks", "NaN detected on rank 3 at step 1200", "nan_loss"),
    # a check that found nothing says so ("no ...", ": False")
    ("no NaN or Inf detected in gradients", "NaN or Inf detected in gradients at step 1200", "nan_loss"),
    ("detected nan: False", "detected nan in the output of layer 12", "nan_loss"),
    # a word that starts with nan/inf is a name, not a loss value (health.nan_iteration)
    ("step 10 | loss: nan-aware scaling enabled", "step 10 | loss: nan | lr 1e-4", "nan_loss"),
    ("train/loss: inf-norm clipped", "train/loss: inf", "nan_loss"),
    # gradient/activation checkpointing is recomputation, not a checkpoint file (health.checkpoint_mismatch)
    ("`use_cache=True` is incompatible with gradient checkpointing. Setting `use_cache=False`.",
     "RuntimeError: the checkpoint is incompatible with the model: 32 layers saved, 40 expected", "checkpoint_error"),
    ("activation checkpointing is incompatible with cpu offload, disabling it",
     "Error: checkpoints do not match the tensor parallel size of this run", "checkpoint_error"),
    # a zero in a table's cell (dcgmi stats, nvidia-smi -q boxes) is no ECC error
    ("| * Double Bit ECC Errors        | 0                                              |",
     "| * Double Bit ECC Errors        | 2                                              |", "gpu_hw"),
    # fairseq skips a batch that ran out of memory and goes on; its old "| " prefix before the level
    ("| WARNING: ran out of memory with exception: CUDA out of memory. Tried to allocate 1.50 GiB "
     "(GPU 3; 31.75 GiB total capacity; 28.10 GiB already allocated); skipping batch",
     "RuntimeError: CUDA out of memory. Tried to allocate 1.50 GiB (GPU 3; 31.75 GiB total capacity)", "oom"),
)

# Lines logged at INFO that carry the curated nan_loss signal's words: a framework that copes (skips
# the step, reruns the iteration) says so at INFO; a real stop is an exception or an ERROR line.
# (INFO line, the same words raised: that still stops the run)
INFO_COPING = (
    ("[2024-02-10 08:14:22,113] [INFO] [engine.py:1234:step] Detected NaN loss at step 300, skipping update",
     "RuntimeError: Detected NaN loss at step 300"),
    ("INFO:megatron.core.rerun_state_machine:Unexpected result nan on rank 3 at iteration #1200 invocation #1, rerunning",
     "[rank3]: RuntimeError: Unexpected result nan on rank 3 at iteration #1200 invocation #2"),
    ("[NeMo I 2024-06-03 13:10:44 train:120] grad norm is nan, skipping step", "ValueError: grad norm is nan"),
    ("I0604 13:22:10.000000 140 train.py:88] loss is nan at step 40, skipping the update",
     "AssertionError: loss is nan at step 40"),
)

# A NaN loss in a step line is a NaN loss at any level (the family layer reads ignored step lines).
INFO_STEP_NAN = (
    "[NeMo I 2024-06-03 13:10:44 train:120] step 120 reduced_train_loss: nan",
    "INFO:root:Epoch 3 | step 1200 | loss: nan",
    "2021-03-04 10:00:00 | INFO | train_inner | epoch 001:    200 / 1000 loss=nan, ppl=nan, wps=5120",
)


@pytest.fixture(scope="module", params=PRESETS)
def cls(request):
    return LineClassifier(load_monitoring_preset(request.param))


@pytest.mark.parametrize("benign,failure,error_type", PAIRS, ids=[p[0][:40] for p in PAIRS])
def test_benign_twin_is_silent_and_failure_fires(cls, benign, failure, error_type):
    assert cls.classify(benign, 1) is None, cls.classify(benign, 1)
    hit = cls.classify(failure, 1)
    assert hit is not None and not hit.cascade and hit.error_type == error_type, hit


@pytest.mark.parametrize("line,raised", INFO_COPING, ids=[p[0][:40] for p in INFO_COPING])
def test_curated_signals_do_not_fire_on_info_lines(cls, line, raised):
    assert cls.classify(line, 1) is None, cls.classify(line, 1)
    hit = cls.classify(raised, 1)
    assert hit is not None and not hit.cascade and hit.failure_class.value == "permanent", hit


@pytest.mark.parametrize("line", INFO_STEP_NAN)
def test_nan_loss_in_an_info_step_line_fires(cls, line):
    hit = cls.classify(line, 1)
    assert hit is not None and hit.error_type == "nan_loss" and hit.failure_class.value == "permanent", hit


# A program that caught a CUDA OOM and copes (skips the batch, shrinks the micro-batch) logs it at WARNING,
# with the level as a field after its logger's prefix; the uncaught OOM is an exception line.
WARNING_COPING = (
    # Composer's auto micro-batching
    "2024-06-03 12:44:10,001: rank0[51234][MainThread]: WARNING: composer.trainer.trainer: CUDA out of memory "
    "detected. Train microbatch size will be decreased from 8 -> 4.",
    "[2024-02-10 08:14:22,113] [WARNING] [engine.py:1234:step] CUDA out of memory caught, skipping batch",
    "[NeMo W 2024-06-03 12:44:11 nemo_logging:349] CUDA out of memory during warmup, reducing batch size",
    "[rank: 0] WARNING: ran out of memory with exception: CUDA out of memory. Tried to allocate 2.00 GiB; skipping batch",
)


@pytest.mark.parametrize("line", WARNING_COPING, ids=[l[:40] for l in WARNING_COPING])
def test_curated_signals_do_not_fire_on_warning_fields(cls, line):
    assert cls.classify(line, 1) is None, cls.classify(line, 1)
    hit = cls.classify("[rank0]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.", 1)
    assert hit is not None and hit.error_type == "oom", hit
