"""Progress from the step lines of every common training stack, as each program prints them:
the format table (``progress.BUILTIN_FORMATS``), the hang pace, the start of training and the
save window from each of them, progress bars redrawn with carriage returns, and a user's own
format from the config. Time is passed in."""

from __future__ import annotations

import pytest

from sidecar.classify import HangConfig, LineClassifier, ProgressTracker, load_monitoring_preset
from sidecar.classify.config import apply_overrides, dump_monitoring, load_monitoring, read_preset
from sidecar.classify.model import ProgressKind
from sidecar.classify.progress import BUILTIN_FORMATS, ProgressReader
from sidecar.classify.report import verdict_for_path
from sidecar.errors import ConfigError

from test_classify_progress import first_hang_time

STEP, ACTIVITY, SAVING, SAVED, LOADED = (ProgressKind.STEP, ProgressKind.ACTIVITY, ProgressKind.SAVING,
                                         ProgressKind.SAVED, ProgressKind.LOADED)
HANG = load_monitoring_preset("megatron_production").hang


def titan(step: int) -> str:
    # torchtitan 0.3's metrics.py, with its default colours, behind its logger's
    # "[titan] <time> - root - INFO - "
    return (f"[titan] 2025-01-10 10:00:{step % 60:02d},123 - root - INFO - \x1b[31mstep: {step:2}  "
            f"\x1b[32mloss:  7.41830  \x1b[38;2;180;60;0mgrad_norm:  1.2345  \x1b[38;2;54;234;195mmemory: "
            f"20.12GiB(25.43%)  \x1b[34mtps: 1,234  \x1b[36mtflops: 56.78  \x1b[35mmfu: 5.74%\x1b[39m")


def bar(n: int, total: int = 1000, desc: str = "") -> str:
    pct = f"{100 * n // total:3d}%"
    fill = "█" * (10 * n // total)
    return f"{desc}{pct}|{fill:<10}| {n}/{total} [00:{n % 60:02d}<07:30,  2.19it/s]"


# (format, line as printed, kind, iteration): each wording as the program's source prints it
# (Megatron-LM, NeMo 3, torchtitan 0.3, DeepSpeed 0.19, Lightning 2.6, transformers 5, fairseq
# 0.12, Composer 0.32; a few older wordings marked)
REAL_LINES = [
    ("megatron", " [2024-05-01 12:00:00] iteration      120/    1000 | consumed samples:          960 | "
     "elapsed time per iteration (ms): 212.3 | learning rate: 2.999E-04 | global batch size:     8 | "
     "lm loss: 7.130615E+00 | loss scale: 1.0 | grad norm: 1.234 | number of skipped iterations:   0 | "
     "number of nan iterations:   0 |", STEP, 120),
    ("megatron", "[default0]:Training epoch 0, iteration 119/999 | lr: 0.0001499 | global_batch_size: 16 | "
     "global_step: 119 | reduced_train_loss: 7.102 | train_step_timing in s: 0.4862 | consumed_samples: 1920",
     STEP, 119),  # NeMo 2
    ("megatron_saving", "saving checkpoint at iteration     100 to /ckpt in torch_dist format", SAVING, 100),
    ("megatron_saved", "  successfully saved checkpoint from iteration     100 to /ckpt [ t 1/1, p 1/1 ]", SAVED, 100),
    ("megatron_saved", "[NeMo I 2025-06-01 10:00:03 dist_ckpt_io:312] Successfully saved checkpoint from iteration "
     "    100 to /results/checkpoints/step=100", SAVED, 100),
    ("megatron_loaded", " successfully loaded checkpoint from /ckpt [ t 1/1, p 1/1 ] at iteration 100", LOADED, 100),
    ("megatron_loaded", " loading distributed checkpoint from /ckpt at iteration 100", LOADED, 100),
    ("nemo", "[2024-03-05 10:00:00,123] [INFO] [timer.py:264:stop] epoch=0/micro_step=10/global_step=10, "
     "RunningAvgSamplesPerSec=62.1, CurrSamplesPerSec=63.0, MemAllocated=1.2GB, MaxMemAllocated=3.4GB",
     STEP, 10),  # DeepSpeed's throughput timer
    ("nemo_saved", "[NeMo I 2025-06-01 10:00:03 dist_ckpt_io:309] Global Checkpoint Save : Rank: 0 : Iteration: 100 "
     ": Start time: 1748772000.123s : Save duration: 3.210s", SAVED, 100),
    ("lightning", "Epoch 0: :  12%|█▏        | 120/1000 [02:00<14:40, reduced_train_loss=7.100, global_step=119.0, "
     "consumed_samples=1920.0, train_step_timing in s=0.486]", STEP, 120),  # NeMo's bar: Lightning's count
    ("lightning", "Epoch 3: :  50%|█████     | 500/1000 [01:40<01:40, reduced_train_loss=2.310, global_step=3.5e+3]",
     STEP, 3500),  # tqdm shows 3 digits of a float postfix
    ("torchtitan", titan(10), STEP, 10),
    ("torchtitan", "[titan] 2025-01-10 10:00:00,123 - root - INFO - step:  1  loss: 12.23450  grad_norm:  1.2345  "
     "memory: 20.12GiB(25.43%)  tps: 1,234  tflops: 56.78  mfu: 5.74%", STEP, 1),  # --metrics.disable_color_printing
    ("torchtitan_validation", "[titan] 2025-01-10 10:00:00,123 - root - INFO - \x1b[33mvalidate step: 10  "
     "\x1b[32mloss:  7.4183  \x1b[38;2;54;234;195mmemory: 20.12GiB(25.43%)  \x1b[34mtps: 1,234\x1b[39m", ACTIVITY, None),
    ("torchtitan_saving", "[titan] 2025-01-10 10:05:00,000 - root - INFO - Saving the checkpoint.", SAVING, None),
    ("torchtitan_saving", "[titan] 2025-01-10 10:05:00,000 - root - INFO - Saving the checkpoint (or staging "
     "if async is enabled).", SAVING, None),  # torchtitan before 0.2
    ("torchtitan_saving", "[titan] 2025-01-10 10:05:00,000 - root - INFO - Saving a full checkpoint at last "
     "step, step 1000.", SAVING, 1000),
    ("torchtitan_saved", "[titan] 2025-01-10 10:05:03,210 - root - INFO - Finished saving the checkpoint in "
     "3.21 seconds.", SAVED, None),
    ("torchtitan_saved", "[titan] 2025-01-10 10:05:03,210 - root - INFO - [GC] Finished saving the checkpoint "
     "(or staging if async is enabled)in 3.21 seconds.", SAVED, None),  # torchtitan before 0.2
    ("torchtitan_saved", "[titan] 2025-01-10 10:05:03,210 - root - INFO - Last step checkpoint completed in 3.21s",
     SAVED, None),
    ("torchtitan_loaded", "[titan] 2025-01-10 11:00:00,000 - root - INFO - Loading the checkpoint from "
     "./outputs/checkpoint/step-100.", LOADED, 100),
    ("deepspeed", "[2024-03-05 10:00:00,123] [INFO] [logging.py:107:log_dist] [Rank 0] step=10, skipped=0, "
     "lr=[9.999e-05], mom=[(0.9, 0.999)]", STEP, 10),
    ("deepspeed_pipe", "steps: 10 loss: 2.1034 iter time (s): 0.512 samples/sec: 62.500", STEP, 10),
    ("deepspeed_pipe", "steps: 20 loss: 2.0410 moe_loss: 0.0123 iter time (s): 0.498 samples/sec: 64.257", STEP, 20),
    ("deepspeed_saving", "[2024-03-05 10:05:00,000] [INFO] [logging.py:107:log_dist] [Rank 0] Saving model "
     "checkpoint: /ckpt/global_step100/mp_rank_00_model_states.pt", SAVING, 100),
    ("deepspeed_saving", "[2024-03-05 10:05:00,000] [INFO] [logging.py:107:log_dist] [Rank 0] [Torch] Checkpoint "
     "global_step100 is about to be saved!", SAVING, 100),
    ("deepspeed_saved", "[2024-03-05 10:05:01,000] [INFO] [torch_checkpoint_engine.py:33:commit] [Torch] "
     "Checkpoint global_step100 is ready now!", SAVED, 100),  # DeepSpeed before 0.15
    ("lightning", "Epoch 0:  12%|█▏        | 120/1000 [00:10<01:15, 11.62it/s, v_num=0, train_loss=2.10]", STEP, 120),
    ("lightning", "Epoch 2:  12%|█▏        | 120/1000 [00:10<01:15, 11.62it/s, v_num=0]", STEP, 2120),
    ("lightning", "Epoch 0: |          | 120/? [00:10<00:00, 11.62it/s, v_num=0]", STEP, 120),  # an iterable dataset
    ("lightning_validation", "Validation DataLoader 0:  40%|████      | 20/50 [00:01<00:01, 18.20it/s]",
     ACTIVITY, None),
    ("lightning_validation", "Validation: |          | 0/? [00:00<?, ?it/s]", ACTIVITY, None),
    ("lightning_saving", "Epoch 0, global step 100: 'val_loss' reached 2.10000 (best 2.10000), saving model to "
     "'/ckpt/epoch=0-step=100.ckpt' as top 1", SAVING, 100),
    ("hf_trainer", "{'loss': '2.104', 'grad_norm': '0.873', 'learning_rate': '4.9e-05', 'epoch': '0.5'}", STEP, None),
    ("hf_trainer", "{'loss': 2.1043, 'grad_norm': 0.873, 'learning_rate': 4.9e-05, 'epoch': 0.5}", STEP, None),  # < 5.0
    ("hf_trainer_eval", "{'eval_loss': '2.031', 'eval_runtime': '3.1', 'eval_samples_per_second': '64.5', "
     "'eval_steps_per_second': '8.1', 'epoch': '1'}", ACTIVITY, None),
    ("hf_trainer_saving", "Saving model checkpoint to /out/checkpoint-500", SAVING, 500),
    ("tqdm", bar(12), STEP, 12),
    ("tqdm", "[default0]:" + bar(12), STEP, 12),
    ("fairseq", "2023-05-01 10:00:00 | INFO | train_inner | epoch 001:    100 / 1563 loss=9.312, nll_loss=8.9, "
     "ppl=477.62, wps=12345.6, ups=3.2, wpb=3840, bsz=128, num_updates=100, lr=5e-05, gnorm=1.2, "
     "loss_scale=128, train_wall=31, gb_free=10.1, wall=33", STEP, 100),
    ("fairseq", "2023-05-01 10:08:00 | INFO | train | epoch 001 | loss 9.312 | nll_loss 8.9 | ppl 477.62 | "
     "wps 12345 | ups 3.21 | wpb 3840 | bsz 128 | num_updates 1563 | lr 0.0005 | gnorm 1.2 | train_wall 480 | "
     "wall 500", STEP, 1563),
    ("fairseq", '2023-05-01 10:00:00 | INFO | train_inner | {"epoch": 1, "update": 0.064, "loss": "9.312", '
     '"num_updates": "100", "lr": "5e-05"}', STEP, 100),
    ("fairseq", '2023-05-01 10:08:00 | INFO | train | {"epoch": 1, "train_loss": "9.312", "train_num_updates": '
     '"1563", "train_lr": "0.0005"}', STEP, 1563),
    ("fairseq_saving", "2023-05-01 10:05:00 | INFO | fairseq.checkpoint_utils | Preparing to save checkpoint "
     "for epoch 1 @ 1563 updates", SAVING, 1563),
    ("fairseq_saved", "2023-05-01 10:05:02 | INFO | fairseq.checkpoint_utils | Saved checkpoint "
     "checkpoints/checkpoint1.pt (epoch 1 @ 1563 updates, score 9.1) (writing took 1.9 seconds)", SAVED, 1563),
    ("fairseq_loaded", "2023-05-01 11:00:00 | INFO | fairseq.trainer | Loaded checkpoint "
     "checkpoints/checkpoint_last.pt (epoch 2 @ 1563 updates)", LOADED, 1563),
    ("composer", "[batch=10/100]:", STEP, 10),
    ("composer", "[epoch=1][batch=10/100]:", STEP, 110),
    ("composer", "[token=20480/1000000]:", STEP, 20480),
    ("composer_eval", "[Eval batch=5/100] Eval on eval data:", ACTIVITY, None),
]

NOT_PROGRESS = [
    "Map:  50%|█████     | 500/1000 [00:00<00:00, 5000.00 examples/s]",  # datasets' preprocessing bar
    "Loading checkpoint shards: 100%|██████████| 2/2 [00:03<00:00,  1.52s/it]",
    "100%|██████████| 44.7M/44.7M [00:00<00:00, 123MB/s]",  # a download
    "  global_step: 0",  # a config dump
    "[titan] 2025-01-10 10:00:00,123 - root - INFO - Training starts at step 1.",
    "node1:1:2 [0] NCCL INFO Channel 00/02 :    0   1",
]


@pytest.mark.parametrize("name,line,kind,iteration", REAL_LINES, ids=[f"{r[0]}-{i}" for i, r in enumerate(REAL_LINES)])
def test_each_format_reads_its_real_line(name, line, kind, iteration):
    events = ProgressReader().read(line.encode())
    assert len(events) == 1, events
    assert (events[0].format, events[0].kind, events[0].iteration) == (name, kind, iteration)


@pytest.mark.parametrize("line", NOT_PROGRESS)
def test_lines_that_are_not_progress(line):
    assert ProgressReader().read(line.encode()) == []


def test_every_builtin_format_has_a_real_line_here():
    assert {f.name for f in BUILTIN_FORMATS} == {r[0] for r in REAL_LINES}


@pytest.mark.parametrize("preset", ["megatron_production", "generic"])
def test_progress_lines_never_fire_the_classifier(preset):
    clf = LineClassifier(load_monitoring_preset(preset))
    fired = [(line, hit.signal) for _, line, _, _ in REAL_LINES if (hit := clf.classify(line, 1))]
    assert fired == []


# ----------------------------------------------------------------------------- bars with \r
def test_a_bar_line_counts_its_last_step():
    line = "\r".join(bar(n) for n in range(0, 41)) + "\r"  # a closed bar: every redraw in one line
    events = ProgressReader().read(("[default0]:" + line).encode())
    assert [e.iteration for e in events] == list(range(0, 41))
    p = ProgressTracker(HANG)
    p.observe(line, 10.0)
    assert p.last_iteration == 40 and p.first_iteration == 0


def test_a_long_bar_line_is_read_in_its_end_and_never_a_cut_number():
    line = "\r".join(bar(n, 100000) for n in range(0, 3000))  # ~190 KB
    events = ProgressReader().read(line.encode())
    assert events and events[-1].iteration == 2999
    assert [e.iteration for e in events] == list(range(events[0].iteration, 3000))


def test_hf_log_dict_written_over_the_bar():
    # tqdm.write clears the bar, prints the dict, and the bar goes on in the same physical line
    line = f"\r{bar(499)}\r{bar(500)}\r{' ' * 60}\r{{'loss': 2.1, 'grad_norm': 0.5, 'learning_rate': 2.5e-05, 'epoch': 0.5}}"
    assert [(e.format, e.iteration) for e in ProgressReader().read(line.encode())] == [
        ("tqdm", 499), ("tqdm", 500), ("hf_trainer", None)]


def test_a_bar_being_drawn_gives_the_pace_and_its_hang():
    """A Lightning bar without a newline yet: the sidecar reads it as it grows."""
    p = ProgressTracker(HANG)
    p.start(0.0)
    drawn = ""
    t = 0.0
    for n in range(1, 41):
        t += 2.0 if n <= 3 else 0.25  # the first steps are slow: the pace must follow the recent ones
        drawn += "\r" + f"Epoch 0:   {n // 10}%|          | {n}/1000 [00:{n:02d}<01:15,  4.00it/s, v_num=0]"
        p.observe_partial(drawn.encode()[-8192:], t)
        p.observe_partial(drawn.encode()[-8192:], t + 0.1)  # unchanged: no new output
    assert p.training_started and p.last_iteration == 40
    assert p.hang_reason(t + HANG.floor_s - 0.1) is None
    reason = p.hang_reason(t + HANG.floor_s + 0.1)
    assert reason and "after iteration 40" in reason and "recent interval 0.25 s" in reason


def test_a_half_written_ordinary_line_is_read_when_complete():
    p = ProgressTracker(HANG)
    p.observe_partial(b"[titan] ... - root - INFO - \x1b[31mstep: 1", 1.0)  # "step: 12" half written
    assert p.last_iteration is None
    p.observe(titan(12), 1.2)
    assert p.last_iteration == 12


# ----------------------------------------------------------------------------- pace, start, save window
@pytest.mark.parametrize("make", [
    titan,
    lambda n: f"[2024-03-05 10:00:00,123] [INFO] [logging.py:96:log_dist] [Rank 0] step={n}, skipped=0, lr=[1e-4]",
    lambda n: f"2023-05-01 10:00:00 | INFO | train_inner | epoch 001:  {n:5d} / 1563 loss=9.3, num_updates={n}, lr=5e-05",
    lambda n: f"[batch={n}/100000]:",
    lambda n: "{'loss': 2.1, 'grad_norm': 0.5, 'learning_rate': 2.5e-05, 'epoch': %.2f}" % (n / 1000),
], ids=["torchtitan", "deepspeed", "fairseq", "composer", "hf_trainer"])
def test_pace_and_hang_from_other_stacks(make):
    p = ProgressTracker(HANG)
    p.start(0.0)
    p.observe("loading data ...", 1.0)
    assert not p.training_started
    t = 2.0
    for n in range(1, 31):
        p.observe(make(n), t)
        t += 0.3
    last = t - 0.3
    assert p.training_started and p.steps_seen == 30
    hung_at = first_hang_time(p, last)
    assert hung_at is not None and HANG.floor_s <= hung_at - last < HANG.floor_s + 0.2  # 10 x 0.3 s < floor
    assert "recent interval 0.3 s" in p.hang_reason(hung_at)


def test_lightning_epochs_are_progress_and_validation_is_not_a_hang():
    p = ProgressTracker(HangConfig(floor_s=2.0))
    t = 0.0
    for epoch in range(2):
        for n in range(1, 21):
            p.observe(f"Epoch {epoch}:  {5 * n}%|█         | {n}/20 [00:01<00:01, 10.00it/s, v_num=0]", t)
            t += 0.1
        for v in range(1, 31):  # validation: 30 batches of 0.5 s, longer than 10 x the step pace
            p.observe(f"Validation DataLoader 0:  {v * 3}%|          | {v}/30 [00:01<00:01, 2.0it/s]", t)
            t += 0.5
            assert p.hang_reason(t) is None
    assert p.last_iteration == 20 + 20  # epoch 1, step 20 of 20
    assert p.iteration_timeout_s() == 2.0  # the 0.5 s validation gaps are not the step pace


def test_save_window_from_torchtitan_lines():
    p = ProgressTracker(HangConfig(checkpoint_timeout_s=300, save_floor_s=20))
    t = 0.0
    for n in range(1, 11):
        p.observe(titan(n), t)
        t += 0.2
    p.observe("[titan] 2025-01-10 10:05:00,000 - root - INFO - Saving the checkpoint (or staging if async is enabled).", t)
    assert p.saving_checkpoint and p.hang_reason(t + 200) is None  # the first save: checkpoint_timeout_s
    p.observe("[titan] 2025-01-10 10:05:03,210 - root - INFO - Finished saving the checkpoint (or staging if async "
              "is enabled)in 3.00 seconds.", t + 3)
    assert not p.saving_checkpoint and p.longest_save_s == pytest.approx(3.0)
    t += 3
    for n in range(11, 16):
        t += 0.2
        p.observe(titan(n), t)
    p.observe("[titan] 2025-01-10 10:06:00,000 - root - INFO - Saving the checkpoint (or staging if async is enabled).", t)
    assert p.hang_reason(t + 19) is None  # learned: max(floor 20 s, 5 x 3 s)
    reason = p.hang_reason(t + 21)
    assert reason.startswith("checkpoint save at iteration 15 running for 21 s")


def test_a_save_without_an_end_line_ends_with_the_next_step():
    p = ProgressTracker(HANG)
    p.observe(bar(499), 0.0)
    p.observe(bar(500), 0.5)
    p.observe("Saving model checkpoint to /out/checkpoint-500", 0.6)
    assert p.saving_checkpoint and p.hang_reason(100) is None
    p.observe(bar(501), 10.6)
    assert not p.saving_checkpoint and p.longest_save_s == pytest.approx(10.0)
    assert p.iteration_timeout_s() == HANG.floor_s  # the save's gap is not the pace


# ----------------------------------------------------------------------------- config
def test_user_format_comes_first_and_builtins_can_be_switched_off():
    data = apply_overrides(read_preset("generic"), {"progress": {
        "my_trainer": {"pattern": r"global batch (?P<iteration>\d+) done"},
        "torchtitan": {"disabled": True},
        "tqdm": {"kind": "activity"},
    }})
    cfg = load_monitoring(data)
    names = [f.name for f in cfg.progress]
    assert names[0] == "my_trainer" and "torchtitan" not in names
    p = ProgressTracker(cfg.hang, cfg.progress)
    p.observe("global batch 7 done", 1.0)
    p.observe(titan(8), 2.0)
    p.observe(bar(9), 3.0)
    assert p.last_iteration == 7 and p.steps_seen == 1
    # the frozen run.yaml keeps the formats
    assert load_monitoring(dump_monitoring(cfg)).progress == cfg.progress


@pytest.mark.parametrize("override,must_say", [
    ({"mine": {"pattern": r"step (\d+)"}}, None),  # an unnamed group is fine: a step without number
    ({"mine": {"pattern": r"step (?P<n>\d+)"}}, "named groups n"),
    ({"mine": {"pattern": r"epoch (?P<epoch>\d+)"}}, "epoch/total only with iteration"),
    ({"mine": {"pattern": r"step (?P<iteration>\d+"}}, "monitoring.progress.mine.pattern"),
    ({"mine": {"pattern": r"step \d+", "kind": "stepz"}}, "not a progress kind"),
    ({"mine": {"kind": "step"}}, "missing"),
    ({"mine": {"pattern": r"x*"}}, "matches the empty string"),
])
def test_bad_user_formats_are_refused_with_their_key(override, must_say):
    if must_say is None:
        assert load_monitoring(apply_overrides(read_preset("generic"), {"progress": override})).progress[0].name == "mine"
        return
    with pytest.raises(ConfigError) as exc:
        load_monitoring(apply_overrides(read_preset("generic"), {"progress": override}))
    assert must_say in str(exc.value)


def test_classify_reads_progress_of_other_stacks(tmp_path):
    log = tmp_path / "train.log"
    lines = [titan(n) for n in range(1, 51)]
    lines.insert(20, "[titan] 2025-01-10 11:00:00,000 - root - INFO - Loading the checkpoint at step 10.")
    lines += ["Traceback (most recent call last):", "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"]
    lines += ["x" * 200] * 2000  # a long dump after the last step
    log.write_text("\n".join(lines) + "\n")
    v = verdict_for_path(str(log), load_monitoring_preset("generic"))
    assert (v.last_iteration, v.last_checkpoint, v.error_type) == (50, 10, "oom")


def test_hf_evaluation_bar_between_steps_is_alive_not_a_step():
    """HF Trainer's evaluation bar has no description either: its smaller numbers are another
    counter (the job is alive), not steps and not a hang."""
    p = ProgressTracker(HANG)
    t = 0.0
    for n in range(1, 501):
        p.observe(bar(n), t)
        t += 0.5
    for b in range(1, 201):  # 200 evaluation batches of 0.1 s: 20 s, four times the 5 s limit
        p.observe(bar(b, 200), t)
        t += 0.1
        assert p.hang_reason(t) is None
    assert p.last_iteration == 500 and p.iteration_timeout_s() == 5.0
    p.observe(bar(501), t + 0.5)
    assert p.last_iteration == 501 and p.iteration_timeout_s() == 5.0  # the evaluation gap is not pace
    assert p.hang_reason(t + 0.5 + 5.1) is not None


def test_a_data_preparation_bar_before_training_is_not_the_pace():
    """A user's own tqdm bar (no description) that runs to its total before training: its fast
    pace must not call the minutes of loading that follow a hang."""
    p = ProgressTracker(HANG)
    p.start(0.0)
    t = 1.0
    for n in range(1, 21):  # tokenizing 20 shards, 0.1 s each
        p.observe(bar(n, 20), t)
        t += 0.1
    assert not p.training_started
    assert p.hang_reason(t + 600) is None  # ten minutes of loading: only the startup timeout counts
    assert "before the first iteration" in p.hang_reason(t + HANG.startup_timeout_s + 1)
    t += 600
    for n in range(1, 11):  # HF Trainer's bar
        p.observe(bar(n), t)
        t += 0.5
    assert p.training_started and (p.first_iteration, p.last_iteration) == (1, 10)
    assert p.iteration_timeout_s() == HANG.floor_s
