"""Python and the training frameworks: how the family layer reads what they print.

Lines in the form these programs print them (the labelled probe rounds in
``fixtures/family_probe.tsv`` hold many more); each test states one reading rule.
"""

from __future__ import annotations

import pytest

from sidecar.classify import FailureClass, LineClassifier, load_monitoring_preset
from sidecar.classify.model import Confidence, Layer, Role

CLS = LineClassifier(load_monitoring_preset("megatron_production"))
T, P = FailureClass.TRANSIENT, FailureClass.PERMANENT


def verdict(line: str) -> tuple[str, FailureClass, Role] | None:
    hit = CLS.classify(line, 1)
    return None if hit is None else (hit.error_type, hit.failure_class, hit.role)


@pytest.mark.parametrize("head", [
    "2024-01-11 09:20:15 | ERROR | fairseq.trainer |",  # fairseq, loguru
    "ERROR:train:",  # logging.basicConfig
    "[2024-05-01 10:00:00,000] [ERROR] [engine.py:120:step]",  # DeepSpeed
    "2024-05-01 10:00:00,000 - train - CRITICAL -",  # logging's default format
    "[NeMo E 2024-05-01 10:00:00 exp_manager:812]",
    "E1201 10:00:00.123456 4242 trainer.cc:77]",  # glog / absl
])
def test_a_logged_error_is_read_by_its_level_and_its_family_words(head):
    hit = CLS.classify(f"{head} OOM during optimization, irrecoverable", 1)
    assert hit is not None and hit.signal == "severity.memory" and hit.confidence is Confidence.LOW, hit
    assert hit.failure_class is P


@pytest.mark.parametrize("line", [
    "2024-01-11 09:20:11 | WARNING | fairseq.trainer | OOM during optimization, irrecoverable",
    "2024-01-11 09:20:11 | INFO | fairseq.trainer | OOM during optimization, irrecoverable",
    "2024-05-01 10:00:00,000 ERROR [uploader] connection reset by peer, will retry in 5 s",
    "Epoch 3: OOM during optimization, irrecoverable",  # no level: prose, not a logged error
    "E0000 00:00:1733040000.123456 12345 cuda_dnn.cc:8310] Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN when one has already been registered",
])
def test_the_same_words_below_error_level_or_retried_are_silent(line):
    assert CLS.classify(line, 1) is None


def test_a_wrapper_is_read_by_the_exception_it_carries():
    ray = "(TrainTrainable pid=12345, ip=10.0.0.5) ray.exceptions.RayTaskError({}): ray::_Inner.train() (pid=12345, ip=10.0.0.5)"
    assert verdict(ray.format("ValueError")) == ("config_error", P, Role.CAUSE)
    assert verdict(ray.format("RuntimeError"))[2] is Role.CASCADE  # says nothing of its own
    assert verdict("torch._dynamo.exc.InternalTorchDynamoError: AttributeError: 'NoneType' object has no attribute 'dtype'") \
        == ("code_error", P, Role.CAUSE)
    # an inner wrapper is not a cause: the compiler's failure is
    assert verdict("torch._inductor.exc.InductorError: CalledProcessError: Command '['/usr/bin/gcc', 'x.c']' returned non-zero exit status 1.")[1:] \
        == (P, Role.CAUSE)


@pytest.mark.parametrize("line, expected", [
    ("jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 17179869184 bytes.", ("oom", P)),
    ("jax.errors.JaxRuntimeError: DATA_LOSS: checksum mismatch reading /ckpt/1200/params/0.zarr", ("data_corrupt", P)),
    # tensorstore raises ValueError whatever the status: the preset's ValueError signal gives way
    ("ValueError: UNAVAILABLE: Error reading \"gs://bucket/ckpt/1200/state/d/1\": socket closed", ("network", T)),
    ("jaxlib.xla_extension.XlaRuntimeError: INVALID_ARGUMENT: Executable expected shape f32[8,1024] for argument 3", ("config_error", P)),
])
def test_a_status_code_at_the_head_of_a_message_decides(line, expected):
    hit = CLS.classify(line, 1)
    assert hit is not None and (hit.error_type, hit.failure_class) == expected, hit


def test_a_verdict_by_exception_type_gives_way_to_a_family_of_the_other_class():
    eio = ('ValueError: FAILED_PRECONDITION: Error reading local file "/ckpt/5000/state/d/8f": '
           "Input/output error [source locations='tensorstore/internal/os/file_util_posix.cc:246']")
    hit = CLS.classify(eio, 1)
    assert hit.layer is Layer.FAMILY and (hit.error_type, hit.failure_class) == ("filesystem", T), hit
    hit = CLS.classify("ValueError: mmap length is greater than file size", 1)
    assert hit.layer is Layer.CURATED and hit.error_type == "config_error", hit


@pytest.mark.parametrize("line, expected", [
    ("RuntimeError: unable to open shared memory object </torch_1234_567_89> in read-write mode: Too many open files (24)", ("config_error", P)),
    ("Exception: Input/output error (os error 5)", ("filesystem", T)),
    ("RuntimeError: Expected number of dimensions (5)", ("code_error", P)),  # a count, not an errno
])
def test_a_strerror_with_its_errno_is_read_as_that_errno(line, expected):
    hit = CLS.classify(line, 1)
    assert (hit.error_type, hit.failure_class) == expected, hit


@pytest.mark.parametrize("line", [
    "         Train loss/train/total: nan",  # Composer
    "Epoch 0: :  12%|█▏        | 1200/10000 [20:00<2:26:40, reduced_train_loss=nan, global_step=1199.0]",  # NeMo
    "Train Epoch: 3 [12800/60000 (21%)]\tLoss: nan",  # PyTorch's examples
    "[rank0]: RuntimeError: The total norm of order 2.0 for gradients from `parameters` is non-finite, so it cannot be clipped.",
])
def test_a_nan_loss_under_any_metric_name_stops(line):
    hit = CLS.classify(line, 1)
    assert hit is not None and hit.error_type == "nan_loss" and hit.failure_class is P, hit


@pytest.mark.parametrize("line", [
    "NaN check: passed (0 non-finite values in grads)",
    "There were missing keys in the checkpoint model loaded: ['lm_head.weight'].",
    "{'eval_loss': 1.234, 'eval_error_rate': 0.05, 'eval_runtime': 12.3, 'epoch': 1.0}",
])
def test_healthy_counters_and_loading_notes_are_silent(line):
    assert CLS.classify(line, 1) is None
