"""RootCauseTracker: the first non-cascade hit wins; cascades never take over."""

from __future__ import annotations

from sidecar.classify import FailureClass, RootCauseTracker, SignalHit


def hit(no, cascade=False, node=None, error_type="nccl"):
    return SignalHit(no, f"line {no}", "s", error_type, FailureClass.TRANSIENT, node, cascade)


def test_cascade_before_root_does_not_become_root():
    t = RootCauseTracker()
    assert t.feed(hit(1, cascade=True, node="n-cascade")) is False
    assert t.feed(hit(2, node=None)) is True
    assert t.feed(hit(3, node="n3")) is False
    v = t.verdict()
    assert v.root.line_no == 2
    assert [h.line_no for h in v.evidence] == [1, 3]
    # the root names no node: the first non-cascade evidence line does, never a cascade line
    assert v.node == "n3"
    assert v.last_iteration is None and v.last_checkpoint is None


def test_only_cascades_means_no_root():
    t = RootCauseTracker()
    t.feed(hit(1, cascade=True, node="n1"))
    v = t.verdict()
    assert v.root is None and v.node is None and v.evidence_total == 1


# --- context rules on real lines (srun + torchrun episodes of tests/classify/fixtures/episodes)
from sidecar.classify import LineClassifier, load_monitoring_preset  # noqa: E402
from sidecar.classify.model import Role  # noqa: E402

GLOO_CLOSED = ("0: [default0]:[rank1]: RuntimeError: [/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] "
               "Connection closed by peer [127.0.0.1]:4513. This is typically caused by a remote worker crashing.")
ABORTED = ("1: E1201 06:55:37.970000 572 .venv/lib/python3.11/site-packages/torch/distributed/elastic/multiprocessing/api.py:1002] "
           "failed (exitcode: -6) local_rank: 0 (pid: 604) of binary: .venv/bin/python")
AGENT_TERM = "1: torch.distributed.elastic.multiprocessing.api.SignalException: Process 31821 got signal: 15"
SRUN_EXIT = "srun: error: n2: task 1: Exited with exit code 1"
SRUN_KILLED = "srun: error: n1: task 0: Killed"
STEP_ABORTED = "srun: Job step aborted: Waiting up to 7 seconds for job step to finish."
STEP_CANCELLED = "0: slurmstepd-n1: error: *** STEP 248.0 ON n1 CANCELLED AT 2026-12-01T06:56:35 ***"
TIME_LIMIT = "slurmstepd: error: *** STEP 248.0 ON n1 CANCELLED AT 2026-12-01T06:56:35 DUE TO TIME LIMIT ***"


def track(*lines):
    cls = LineClassifier(load_monitoring_preset("megatron_production"))
    t = RootCauseTracker()
    became_root = [t.feed(h) for h in (cls.classify(line, no) for no, line in enumerate(lines, 1)) if h is not None]
    return t, became_root


def test_each_real_signal_report_is_cascade_line_by_line():
    cls = LineClassifier(load_monitoring_preset("megatron_production"))
    for line in (ABORTED, AGENT_TERM, SRUN_KILLED, STEP_CANCELLED):
        assert cls.classify(line, 1).cascade, line


def test_a_signal_report_before_slurm_ends_the_step_is_a_death_over_the_symptom():
    t, _ = track(GLOO_CLOSED, ABORTED, SRUN_EXIT, AGENT_TERM)
    v = t.verdict()
    assert v.root.line_no == 2 and v.root.error_type == "crashed" and v.root.role is Role.DEATH
    assert [h.line_no for h in v.superseded] == [1]
    assert v.node is None  # a signal says nothing bad about the node


def test_a_signalled_agent_is_the_root_before_the_survivor_s_symptom():
    t, _ = track(AGENT_TERM, GLOO_CLOSED, SRUN_EXIT)
    assert t.verdict().root.line_no == 1 and t.verdict().root.error_type == "terminated"


def test_signal_reports_after_slurm_began_ending_the_step_stay_cascade():
    t, became_root = track(SRUN_EXIT, AGENT_TERM, ABORTED)
    assert t.verdict().root is None and not any(became_root)


def test_srun_s_killed_task_first_is_a_killed_death_without_a_node():
    t, _ = track(SRUN_KILLED, STEP_CANCELLED, AGENT_TERM)
    v = t.verdict()
    assert v.root.line_no == 1 and v.root.error_type == "killed" and v.node is None


def test_a_cancelled_step_with_no_other_cause_is_the_scancel_in_the_verdict_only():
    t, became_root = track(STEP_ABORTED, STEP_CANCELLED, SRUN_KILLED)
    assert not any(became_root)  # the sidecar never acts on it
    v = t.verdict()
    assert v.root.line_no == 2 and v.root.error_type == "scancel" and v.root.failure_class is FailureClass.TRANSIENT
    assert 2 not in [h.line_no for h in v.evidence]
    # a cause before the cancel keeps its place
    t, _ = track(GLOO_CLOSED, STEP_CANCELLED)
    assert t.verdict().root.error_type == "peer_lost"


def test_the_time_limit_says_why_the_agent_was_signalled():
    t, _ = track(AGENT_TERM, TIME_LIMIT)
    v = t.verdict()
    assert v.root.line_no == 2 and v.root.error_type == "timeout" and [h.line_no for h in v.superseded] == [1]


def test_the_time_limit_does_not_explain_a_crash_or_a_kill():
    # a rank that crashed and left the job hanging until its time limit died of the crash
    t, _ = track(ABORTED, TIME_LIMIT)
    assert t.verdict().root.line_no == 1 and t.verdict().root.error_type == "crashed"


def test_torch_elastic_s_summary_of_workers_it_stopped_is_no_death():
    # nproc-per-node > 1: one worker failed (a line nothing recognises), the agent stopped the
    # others, and its summary lists them as signalled; that is the agent's doing
    t, became_root = track("1:   exitcode  : -15 (pid: 604)  (SIGTERM)",
                           "1:   traceback : Signal 15 (SIGTERM) received by PID 604")
    assert t.verdict().root is None and not any(became_root)


# --- rule 3b: Slurm ending the step explains what the ranks print while it does
WATCHDOG = ("[rank8]:[E902 14:47:12.800341 ProcessGroupNCCL.cpp:616] [Rank 8] Watchdog caught collective operation timeout: "
            "WorkNCCL(SeqNum=220812, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600032 milliseconds before timing out.")
NODE_FAILURE = "srun: error: Node failure on nid00127"
JOB_CANCELLED = "slurmstepd: error: *** JOB 640021 ON gpu012 CANCELLED AT 2024-10-01T08:52:14 ***"
PREEMPTED = "slurmstepd: error: *** JOB 77120 ON gpu-p10 CANCELLED AT 2024-05-02T04:31:44 DUE TO PREEMPTION ***"
CUDA_OOM = "[rank5]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB."


def test_a_node_failure_explains_the_survivors_timeouts_before_it():
    t, _ = track(WATCHDOG, SRUN_EXIT, NODE_FAILURE)  # even after a task's end: the node was part of the step
    v = t.verdict()
    assert v.root.line_no == 3 and v.root.error_type == "node_failure" and v.node == "nid00127"
    assert [h.line_no for h in v.superseded] == [1] and "Slurm ends the step" in v.why
    # a permanent cause before it keeps its place: the node failure does not explain an OOM
    t, _ = track(CUDA_OOM, NODE_FAILURE)
    assert t.verdict().root.error_type == "oom"


def test_a_time_limit_or_preemption_explains_errors_only_before_any_task_ended():
    t, _ = track(WATCHDOG, PREEMPTED)
    assert t.verdict().root.error_type == "preempted"
    t, _ = track(WATCHDOG, TIME_LIMIT)
    assert t.verdict().root.error_type == "timeout"
    # a task that ended by itself first: the rank's own failure ended the step, not Slurm
    t, _ = track(WATCHDOG, SRUN_EXIT, TIME_LIMIT)
    assert t.verdict().root.error_type == "nccl_timeout"


def test_a_cancel_banner_explains_a_signalled_agent_before_it_unless_the_sidecar_cancelled():
    t, _ = track(AGENT_TERM, JOB_CANCELLED)
    v = t.verdict()
    assert v.root.line_no == 2 and v.root.error_type == "scancel" and v.node is None
    assert [h.line_no for h in v.superseded] == [1]
    # after a task's end the banner is Slurm ending the rest (srun --kill-on-bad-exit)
    t, _ = track(AGENT_TERM, SRUN_EXIT, JOB_CANCELLED)
    assert t.verdict().root.error_type == "terminated"
    # the sidecar ending the job: the cancel is its own
    cls = LineClassifier(load_monitoring_preset("megatron_production"))
    t = RootCauseTracker()
    t.feed(cls.classify(AGENT_TERM, 1))
    t.job_ending()
    t.feed(cls.classify(JOB_CANCELLED, 2))
    assert t.verdict().root.error_type == "terminated"


# --- rule 2: NCCL's "Last error" detail of a lost peer makes the NCCL error a symptom
NCCL_SYSTEM = ("[rank1]: torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:1970, "
               "unhandled system error (run with NCCL_DEBUG=INFO for details), NCCL version 2.20.5")
RESET = "[rank1]: socketProgressOpt: Call to recv from 10.52.1.11<53211> failed : Connection reset by peer"
KILLED = ("E0914 06:55:04.300000 7710 torch/distributed/elastic/multiprocessing/api.py:833] failed (exitcode: -9) "
          "local_rank: 0 (pid: 7770) of binary: /usr/bin/python")


def test_an_nccl_error_whose_detail_is_a_lost_peer_gives_way_to_the_dead_rank():
    t, _ = track(NCCL_SYSTEM, "[rank1]: Last error:", RESET, KILLED)
    v = t.verdict()
    assert v.root.line_no == 4 and v.root.error_type == "killed"
    assert [(h.line_no, h.role) for h in v.superseded] == [(1, Role.SYMPTOM)]
    # the detail of another rank, or far from the error, says nothing about this error
    t, _ = track(NCCL_SYSTEM, RESET.replace("[rank1]", "[rank2]"), KILLED)
    assert t.verdict().root.line_no == 1
    t, _ = track(NCCL_SYSTEM, *["[rank1]: Last error:"] * 5, RESET, KILLED)
    assert t.verdict().root.line_no == 1


# --- rule 3b: a hardware fault explains the timeouts of the ranks that lost its GPU
XID_79 = "[Thu Feb  1 01:22:09 2024] NVRM: Xid (PCI:0000:9b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."


def test_a_gpu_fault_printed_after_the_watchdog_timeouts_explains_them():
    t, _ = track(WATCHDOG, SRUN_EXIT, XID_79)
    v = t.verdict()
    assert v.root.line_no == 3 and v.root.error_type == "gpu_hw" and [h.line_no for h in v.superseded] == [1]
    # it does not explain a rank's own failure
    t, _ = track(CUDA_OOM, XID_79)
    assert t.verdict().root.error_type == "oom"


def test_an_nccl_error_whose_detail_is_an_unreachable_peer_stays_the_cause():
    no_route = "[rank1]: socketPollConnect: Connect to 10.5.0.11<45391> returned 113(No route to host) errno 113 No route to host"
    t, _ = track(NCCL_SYSTEM, "[rank1]: Last error:", no_route, KILLED)
    assert t.verdict().root.line_no == 1 and t.verdict().root.error_type == "nccl"


# --- rule 4: the traceback of an exception Python ignored is not a failure
IGNORED = ["[rank4]: Exception ignored in: <function _MultiProcessingDataLoaderIter.__del__ at 0x7f8a1c2e5b40>",
           "[rank4]: Traceback (most recent call last):",
           "[rank4]:     assert self._parent_pid == os.getpid(), 'can only test a child process'",
           "[rank4]: AssertionError: can only test a child process"]


def test_the_exception_python_ignored_is_never_the_root_and_the_next_failure_is():
    t, became_root = track(*IGNORED)
    assert t.verdict().root is None and not any(became_root)
    assert LineClassifier(load_monitoring_preset("megatron_production")).classify(IGNORED[0], 1).role is Role.CONTEXT
    # only the traceback's own exception line: the same rank's next failure is a root
    t, _ = track(*IGNORED, CUDA_OOM.replace("[rank5]", "[rank4]"))
    assert t.verdict().root.line_no == 5 and t.verdict().root.error_type == "oom"
    # another rank's exception right after it is its own failure
    t, _ = track(IGNORED[0], "[rank2]: KeyError: 'position_ids'")
    assert t.verdict().root.line_no == 2


def test_a_node_failure_banner_names_a_survivor_so_the_failed_node_comes_from_srun():
    banner = ("slurmstepd: error: *** STEP 4410021.0 ON nid00311 CANCELLED AT 2024-10-05T08:59:12 DUE TO NODE FAILURE, "
              "SEE SLURMCTLD LOG FOR DETAILS ***")
    t, _ = track(banner, "srun: error: Node failure on nid00313")
    v = t.verdict()
    assert v.root.line_no == 1 and v.root.node is None and v.node == "nid00313"


# rule 5, lines of srun_checkpoint_fs_read_only.log: dcp's wrapper, then the ranks' tracebacks it prints
DCP_WRAPPER = "0: [default0]:[rank1]: torch.distributed.checkpoint.api.CheckpointException: CheckpointException ranks:dict_keys([0, 1])"
DCP_EROFS = "0: [default0]:[rank1]: OSError: [Errno 30] Read-only file system: 'CKPT/.iter_0000010.tmp'"
FRAME = "0: [default0]:[rank1]:   File \"/usr/lib/python3.11/pathlib.py\", line 1116, in mkdir"


def test_the_first_exception_a_checkpoint_wrapper_carries_is_the_root():
    t, _ = track(DCP_WRAPPER, FRAME, DCP_EROFS, DCP_EROFS)
    v = t.verdict()
    assert v.root.line_no == 3 and v.root.error_type == "filesystem" and v.root.failure_class is FailureClass.TRANSIENT
    assert [h.line_no for h in v.superseded] == [1]


def test_a_wrapper_keeps_the_root_against_another_rank_s_or_a_distant_exception():
    # another rank's lines are not the wrapper's tracebacks; nor is an exception far below it
    other_rank = DCP_EROFS.replace("0: [default0]:[rank1]:", "1: [default0]:[rank0]:")
    t, _ = track(DCP_WRAPPER, other_rank)
    assert t.verdict().root.line_no == 1 and t.verdict().root.error_type == "checkpoint_error"
    from sidecar.classify.tracker import WRAPPED_LINES
    t, _ = track(DCP_WRAPPER, *[FRAME] * WRAPPED_LINES, DCP_EROFS)


# --- rule 4c: a line that says its failure follows another's is cascade
HOROVOD_SHUT_DOWN = ("[1,0]<stderr>:horovod.common.exceptions.HorovodInternalError: Horovod has been shut down. This was "
                     "caused by an exception on one of the ranks or an attempt to allreduce, allgather or broadcast a "
                     "tensor after one of the ranks finished execution.")
RAY_TRAIN_FAILED = ("ray.train.base_trainer.TrainingFailedError: The Ray Train run failed. Please inspect the previous "
                    "error messages for a cause.")


def test_a_process_ending_because_another_failed_is_never_the_root():
    exited = "[rank2]: RuntimeError: DataLoader worker (pid(s) 81234, 81235) exited unexpectedly"
    t, became_root = track(HOROVOD_SHUT_DOWN, RAY_TRAIN_FAILED, exited)
    assert t.verdict().root is None and not any(became_root)
    # the rank's own exception printed after a survivor's report is the root
    t, _ = track(HOROVOD_SHUT_DOWN, "[1,2]<stderr>:IndexError: index out of range in self")
    assert t.verdict().root.line_no == 2 and t.verdict().root.error_type == "code_error"
    # the survivors' NCCL errors give way to Slurm's node failure, not to Ray Train's summary
    t, _ = track(NCCL_SYSTEM, RAY_TRAIN_FAILED, NODE_FAILURE)
    assert t.verdict().root.line_no == 3 and t.verdict().root.error_type == "node_failure"


# --- rule 5: a wrapper gives way to the exception it carries
LOADER = ["[rank6]: RuntimeError: Caught ReadTimeoutError in DataLoader worker process 3.",
          "[rank6]: Original Traceback (most recent call last):",
          "[rank6]: TimeoutError: The read operation timed out",
          "[rank6]: urllib3.exceptions.ReadTimeoutError: AWSHTTPSConnectionPool(host='s3.lab', port=443): Read timed out.",
          "[rank6]: botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: \"https://s3.lab/b/shard-1.tar\""]
DCP = ["[rank0]: torch.distributed.checkpoint.api.CheckpointException: CheckpointException ranks:dict_keys([0, 1])",
       "[rank0]: Traceback (most recent call last): (RANK 0)",
       "[rank0]: OSError: [Errno 122] Disk quota exceeded",
       "[rank0]: Traceback (most recent call last): (RANK 1)",
       "[rank0]: OSError: [Errno 5] Input/output error"]


def test_a_dataloader_worker_s_exception_is_the_last_line_of_the_type_it_names():
    t, _ = track(*LOADER, WATCHDOG)
    v = t.verdict()
    # the chain's last exception of that type is the one the worker raised; a cause whatever its role alone
    assert v.root.line_no == 5 and v.root.error_type == "network" and v.root.role is Role.CAUSE
    assert [h.line_no for h in v.superseded] == [1, 4] and "carries" in v.why
    # another rank's line of that type is not what this wrapper carries
    t, _ = track(LOADER[0], LOADER[4].replace("[rank6]", "[rank7]"))
    assert t.verdict().root.line_no == 1


def test_a_checkpoint_exception_gives_way_to_the_first_rank_s_error_it_carries():
    t, _ = track(*DCP)
    v = t.verdict()
    assert v.root.line_no == 3 and v.root.error_type == "disk_full" and [h.line_no for h in v.superseded] == [1]
    # a cause before the wrapper keeps its place (rule 1)
    t, _ = track(CUDA_OOM.replace("[rank5]", "[rank0]"), *DCP)
    assert t.verdict().root.line_no == 1


# --- deaths never name the node to exclude
def test_a_crash_names_no_node_to_exclude():
    t, _ = track("[1,3]<stderr>:[gpu-05:12343] Signal: Segmentation fault (11)",
                 "mpirun noticed that process rank 3 with PID 12343 on node gpu-05 exited on signal 11 (Segmentation fault).")
    v = t.verdict()
    # mpirun's report names where rank 3 died: no evidence that the node is bad
    assert v.root.error_type == "crashed" and v.evidence[0].node == "gpu-05" and v.evidence[0].role is Role.DEATH
    assert v.node is None


# --- progress bars: what another process writes after a bar is its own line
def test_slurm_s_banner_written_after_a_progress_bar_ends_the_step():
    bar = "Epoch 3:  41%|####      | 4100/10000 [1:10:00<1:40:00, 1.02it/s, v_num=7, train_loss=2.100]"
    t, _ = track(WATCHDOG, f"\r{bar}\r{bar}{TIME_LIMIT}")
    assert t.verdict().root.error_type == "timeout" and "Slurm ends the step" in t.verdict().why
    # srun's report of a task's end after a bar: Slurm's banner then ends the rest of the step
    t, _ = track(WATCHDOG, f"\r{bar}{SRUN_EXIT}", TIME_LIMIT)
    assert t.verdict().root.error_type == "nccl_timeout"


def test_a_task_srun_reports_terminated_got_slurm_s_own_signal():
    # srun reports the SIGTERM Slurm sent before slurmstepd's banner is written: the banner says why
    t, _ = track("srun: error: gpu-j10: task 1: Terminated", PREEMPTED)
    v = t.verdict()
    assert v.root.line_no == 2 and v.root.error_type == "preempted" and [h.line_no for h in v.superseded] == [1]
    # a task that exited by itself first: the banner is Slurm ending the rest of the step
    t, _ = track(WATCHDOG, SRUN_EXIT, PREEMPTED)
    assert t.verdict().root.error_type == "nccl_timeout"


def test_prose_after_the_word_node_is_no_node():
    cls = LineClassifier(load_monitoring_preset("megatron_production"))
    assert cls.node_of(b"ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.") is None
    assert cls.node_of(b"RuntimeError: Rank 180, node nvl72005-T14, died") == "nvl72005-T14"


def test_lightning_s_sigterm_exception_is_a_signalled_process_the_time_limit_explains():
    exc = "[rank0]: lightning.fabric.utilities.exceptions.SIGTERMException"
    t, _ = track(exc)
    assert t.verdict().root.error_type == "terminated" and t.verdict().root.failure_class is FailureClass.TRANSIENT
    t, _ = track(exc, TIME_LIMIT)
    assert t.verdict().root.error_type == "timeout"


def test_ucx_s_host_is_the_node_of_its_transport_error():
    ucx = ("[1,5]<stderr>:[1718000000.123456] [gpu-07:12345:0]      ib_mlx5_log.c:177  UCX  ERROR   "
           "Transport retry count exceeded on mlx5_0:1/IB (synd 0x15 vend 0x81 hw_synd 0/0)")
    t, _ = track(ucx)
    assert t.verdict().root.error_type == "network" and t.verdict().node == "gpu-07"


# --- rule 6: a launcher that restarts its workers recovered what failed before
GROUP_RESTART = ("I0612 04:00:03.100000 900 torch/distributed/elastic/agent/server/api.py:868] [default] "
                 "Worker group FAILED. 1/1 attempts left; will restart worker group")


def test_a_worker_group_restart_starts_the_episode_again():
    t, _ = track(WATCHDOG, GROUP_RESTART, CUDA_OOM)
    v = t.verdict()
    assert v.root.line_no == 3 and v.root.error_type == "oom" and [h.line_no for h in v.superseded] == [1]
    assert "restarted its workers at line 2" in v.why
    # nothing failed after the restart: no root (the earlier failure was recovered)
    t, _ = track(WATCHDOG, GROUP_RESTART)
    assert t.verdict().root is None and [h.line_no for h in t.verdict().superseded] == [1]
    # the agent giving up is no restart
    t, _ = track(WATCHDOG, GROUP_RESTART.replace("1/1 attempts left; will restart worker group",
                                                 "0/1 attempts left; will not restart"))
    assert t.verdict().root.line_no == 1
