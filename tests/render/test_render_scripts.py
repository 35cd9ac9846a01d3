"""The rendered training and watchdog scripts: golden files, bash -n, awkward paths, and the
training script's own mechanics (arm/scan/record calls, signal forwarding) run with a fake Python.

To accept an intended change of the rendered scripts: UPDATE_GOLDEN=1 pytest tests/render
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from sidecar.config import load_config
from sidecar.errors import ConfigError
from sidecar.render import render_train_script, render_watchdog_script
from sidecar.rundir import RunPaths

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
NOW = datetime(2026, 3, 4, 5, 6, 7)
ENV = {"AUTOEXP_RUN_ROOT": "/scratch/runs"}
PYTHON = "/opt/venv/bin/python"

CASES = {
    "local_command": ["slurm=local", "backend=command", "run.name=golden-local"],
    "juwels_megatron": ["slurm=juwels", "slurm.account=myproject", "backend=megatron_torchrun",
                        "backend.megatron=llama1_8b_qkln", "backend.megatron_path=/p/software/Megatron-LM",
                        "slurm.signal_before_timeout_s=600", "run.name=golden-juwels"],
    "local_torch": ["slurm=local", "backend=local", "slurm.nodes=2", "run.name=golden-local-torch"],
}


def rendered(case: str) -> dict[str, str]:
    cfg = load_config(None, CASES[case], NOW, env=ENV)
    paths = RunPaths(Path("/scratch/runs") / cfg.run.name)
    return {f"{case}.train.sbatch": render_train_script(cfg, paths, PYTHON),
            f"{case}.watchdog.sbatch": render_watchdog_script(cfg, paths, PYTHON)}


def bash_n(text: str, tmp_path: Path) -> None:
    p = tmp_path / "script.sh"
    p.write_text(text, encoding="utf-8")
    res = subprocess.run(["bash", "-n", str(p)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case, tmp_path):
    for name, text in rendered(case).items():
        golden = GOLDEN / name
        if os.environ.get("UPDATE_GOLDEN") == "1":
            golden.write_text(text, encoding="utf-8")
        expected = golden.read_text(encoding="utf-8") if golden.exists() else None
        assert text == expected, (
            f"rendered {name} differs from {golden}. If the change is intended, accept it with "
            f"`UPDATE_GOLDEN=1 python -m pytest tests/render` and commit tests/golden/.")
        bash_n(text, tmp_path)


def test_training_script_has_the_chain_pieces():
    train = rendered("juwels_megatron")["juwels_megatron.train.sbatch"]
    for needle in ("#SBATCH --job-name=golden-juwels", "#SBATCH --no-requeue",
                   "#SBATCH --output=/scratch/runs/golden-juwels/logs/train-%j.out",
                   "#SBATCH --chdir=/scratch/runs/golden-juwels", "#SBATCH --account=myproject",
                   "#SBATCH --gpus-per-node=4", "#SBATCH --signal=B:USR1@600",
                   "-m sidecar arm --run", "-m sidecar scan --run", "-m sidecar record --run",
                   "srun --kill-on-bad-exit=1 --label torchrun", "--nproc-per-node=4", "--rdzv-backend=c10d", "--tee 3",
                   "/p/software/Megatron-LM/pretrain_gpt.py", "--num-layers 32", "--qk-layernorm",
                   '--save "$AUTOEXP_RUN_DIR/checkpoints"', '--load "$AUTOEXP_RUN_DIR/checkpoints"',
                   "module load"):
        assert needle in train, needle
    wd = rendered("juwels_megatron")["juwels_megatron.watchdog.sbatch"]
    for needle in ("#SBATCH --job-name=golden-juwels-watchdog", "#SBATCH --kill-on-invalid-dep=yes",
                   "#SBATCH --ntasks=1", "#SBATCH --time=00:10:00", "#SBATCH --account=myproject",
                   "#SBATCH --chdir=/scratch/runs/golden-juwels/logs",
                   "-m sidecar watchdog --run"):
        assert needle in wd, needle


def test_double_quote_in_run_dir_is_refused():
    cfg = load_config(None, [], NOW, env=ENV)
    with pytest.raises(ConfigError, match="#SBATCH"):
        render_train_script(cfg, RunPaths(Path('/scratch/a "b"/run')), PYTHON)


def test_percent_in_run_dir_is_refused():
    cfg = load_config(None, [], NOW, env=ENV)
    with pytest.raises(ConfigError, match="%"):
        render_train_script(cfg, RunPaths(Path("/scratch/100%/run")), PYTHON)


# ----------------------------------------------------------------------------- running it
FAKE_PYTHON = """#!/bin/bash
# stands in for the interpreter: logs each call, then acts the part
role=train; [ "$2" = sidecar ] && role=$3
printf '%s\\n' "$(pwd)" "$@" > "$FAKE_LOG/$role.call"
case "$2" in
  sidecar) case "$3" in
      scan) cp "$FAKE_LOG/scan.call" "$FAKE_LOG/scan-$7.call"
            n=$(cat "$FAKE_LOG/scan.count" 2>/dev/null || echo 0); echo $((n + 1)) > "$FAKE_LOG/scan.count"
            [ "$n" -lt "${FAKE_SCAN_CRASHES:-0}" ] && exit 137
            exec sleep 30 ;;
      # the script stops the sidecar before record: let this step's background one start first.
      # FAKE_RELAUNCH=N: the fast path of the first failed step restarts here as attempt N
      record) for i in $(seq 100); do [ -e "$FAKE_LOG/scan-$7.call" ] && break; sleep 0.05; done
        cp "$FAKE_LOG/record.call" "$FAKE_LOG/record-$7.call"
        if [ -n "${FAKE_RELAUNCH:-}" ] && [ "$7" != "$FAKE_RELAUNCH" ]; then
          echo "restart: Transient failure detected (error_type=nccl)"; echo "relaunch attempt $FAKE_RELAUNCH"
        fi; exit 0 ;;
      arm) echo 7; exit 0 ;;
      *) exit 0 ;;
    esac ;;
  sidecar.workload.megatron_sim)
    echo "attempt=$AUTOEXP_ATTEMPT reason=$AUTOEXP_RESTART_REASON" > "$FAKE_LOG/train.env"
    echo "attempt=$AUTOEXP_ATTEMPT reason=$AUTOEXP_RESTART_REASON" >> "$FAKE_LOG/steps"
    # a real step outlives its sidecar's start; one that ends at once may end before it
    for i in $(seq 100); do [ -e "$FAKE_LOG/scan-$AUTOEXP_ATTEMPT.call" ] && break; sleep 0.05; done
    [ -n "${FAKE_SLEEP:-}" ] && { sleep "$FAKE_SLEEP" & wait $!; }
    exit "${FAKE_RC:-0}" ;;
esac
"""


def _calls(log: Path) -> dict[str, list[str]]:
    """role (arm, scan, record, train) -> [cwd, *argv]"""
    return {p.stem: p.read_text(encoding="utf-8").splitlines() for p in log.glob("*.call")}


def _setup(tmp_path: Path):
    """A rendered local/command training script whose run dir and Python have awkward paths."""
    run_dir = tmp_path / "runs with space" / "it's a run"
    paths = RunPaths.of(run_dir)
    paths.create("r")
    pydir = tmp_path / "py dir's"
    pydir.mkdir()
    python = pydir / "python"
    python.write_text(FAKE_PYTHON, encoding="utf-8")
    python.chmod(0o755)
    cfg = load_config(None, ["run.name=r"], NOW, env=ENV)
    script = tmp_path / "train.sbatch"
    script.write_text(render_train_script(cfg, paths, str(python)), encoding="utf-8")
    log = tmp_path / "calls"
    log.mkdir()
    env = {**os.environ, "FAKE_LOG": str(log), "SLURM_JOB_ID": "41"}
    env.pop("AUTOEXP_ATTEMPT", None)
    return paths, python, script, log, env


def test_awkward_paths_survive_and_the_script_calls_arm_scan_train_record(tmp_path):
    paths, python, script, log, env = _setup(tmp_path)
    bash_n(script.read_text(encoding="utf-8"), tmp_path)
    res = subprocess.run(["bash", str(script)], env={**env, "FAKE_RC": "3"}, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, res.stderr
    by_role = _calls(log)
    root = str(paths.root)
    assert by_role["arm"][1:] == ["-m", "sidecar", "arm", "--run", root, "--job", "41"]
    scan = by_role["scan"][1:]
    assert scan[:9] == ["-m", "sidecar", "scan", "--run", root, "--attempt", "7", "--job", "41"]
    assert scan[9] == "--parent-pid" and scan[10].isdigit()  # the batch shell, not the respawn loop
    assert scan[11:] == ["--log", f"{root}/logs/train-41.out", "--start-offset", "0"]
    record = by_role["record"]
    assert record[1:-2] == ["-m", "sidecar", "record", "--run", root, "--attempt", "7",
                            "--job", "41", "--exit-code", "3"]
    assert record[-2] == "--after-pid" and record[-1].isdigit()  # the sidecar, draining its log
    train = by_role["train"]
    assert train[0] == root  # ran in the run directory (the default workdir)
    assert train[1:3] == ["-m", "sidecar.workload.megatron_sim"]
    assert train[train.index("--save") + 1] == f"{root}/checkpoints"
    assert train[train.index("--load") + 1] == f"{root}/checkpoints"
    assert (log / "train.env").read_text().strip() == "attempt=7 reason="
    # the #SBATCH lines as sbatch reads them: double quotes group, and are removed
    text = script.read_text(encoding="utf-8")
    chdir = next(line for line in text.splitlines() if line.startswith("#SBATCH --chdir="))
    assert chdir == f'#SBATCH --chdir="{root}"'


def test_a_relaunch_in_the_allocation_runs_the_next_attempt_in_the_same_job(tmp_path):
    paths, python, script, log, env = _setup(tmp_path)
    paths.logs.mkdir(exist_ok=True)
    (paths.logs / "train-41.out").write_text("old step output\n")
    res = subprocess.run(["bash", str(script)], env={**env, "FAKE_RC": "3", "FAKE_RELAUNCH": "8"},
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 3, res.stderr
    assert (log / "steps").read_text().splitlines() == [
        "attempt=7 reason=", "attempt=8 reason=Transient failure detected (error_type=nccl)"]
    assert (log / "record-7.call").exists() and (log / "record-8.call").exists()
    # the relaunched step's sidecar starts past what the old step wrote
    scan = _calls(log)["scan-8"]
    assert scan[scan.index("--attempt") + 1] == "8"
    assert int(scan[scan.index("--start-offset") + 1]) > 0


def test_attempt_and_reason_from_the_environment_pass_through(tmp_path):
    paths, python, script, log, env = _setup(tmp_path)
    env = {**env, "AUTOEXP_ATTEMPT": "3", "AUTOEXP_RESTART_REASON": "Transient failure detected (error_type=nccl)"}
    res = subprocess.run(["bash", str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "arm" not in _calls(log)
    assert (log / "train.env").read_text().strip() == \
        "attempt=3 reason=Transient failure detected (error_type=nccl)"


@pytest.mark.parametrize("sig,name", [(signal.SIGTERM, "TERM"), (signal.SIGUSR1, "USR1")])
def test_a_signal_is_forwarded_and_recorded(tmp_path, sig, name):
    paths, python, script, log, env = _setup(tmp_path)
    proc = subprocess.Popen(["bash", str(script)], env={**env, "FAKE_SLEEP": "30"}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not (log / "train.env").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    record = _calls(log)["record"]
    assert record[-4:-2] == ["--signal", name], (record, err)
    code = record[record.index("--exit-code") + 1]
    # the training (a bash stand-in) died by the forwarded signal: 128 + signum
    assert code == str(128 + sig), (record, err)
    assert proc.returncode == 128 + sig


def test_a_killed_sidecar_is_started_again(tmp_path):
    paths, python, script, log, env = _setup(tmp_path)
    res = subprocess.run(["bash", str(script)], env={**env, "FAKE_SCAN_CRASHES": "2", "FAKE_SLEEP": "4"},
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (log / "scan.count").read_text().strip() == "3"  # killed twice, running the third time
    assert "starting it again (2/5)" in paths.sidecar_log(7).read_text()
