"""Training as several cooperating processes on this machine (`mnist-dvc launch`, all traffic on
127.0.0.1): the same weights as one process with as many devices, a killed run stops and a rerun
resumes, and DVC runs the train stage that way. (The launcher alone: tests/unit/app/test_launch.py.)"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnist_dvc.config import paths
from mnist_dvc.io.atomic import save_npz, write_json

TIMEOUT_S = 300  # every wait here is bounded


@pytest.fixture
def small_params(repo_root, edit_params):
    """`small_params(folder, **train)`: the shipped params.yaml in `folder`, its model made narrow
    (width 8) and trained for 1 epoch in batches of 64, with `train`'s keys changed on top."""

    def write(folder, **train):
        shutil.copy(repo_root / "params.yaml", folder / "params.yaml")
        edit_params(folder, {f"train.{key}": value for key, value in {"width": 8, "epochs": 1, "batch_size": 64, **train}.items()})

    return write


def test_two_processes_of_two_devices_reach_the_weights_of_one_process_of_four(tmp_path, repo_root, stage_env, mnist_train,
                                                                               small_params, launch_command):
    """The weights alone cannot show that the two processes joined one run: each training alone on
    all the digits would reach them too. So each process also says what run it took part in."""
    images, labels = mnist_train
    np.savez(tmp_path / "digits.npz", images=images[:3200], labels=labels[:3200])  # 50 steps of 64
    small_params(tmp_path)
    script = [sys.executable, str(repo_root / "tests" / "distributed_steps.py"), str(tmp_path / "digits.npz")]
    one = subprocess.run([*script, str(tmp_path / "one.npz")], cwd=tmp_path, env={**stage_env, "JAX_NUM_CPU_DEVICES": "4"},
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([*launch_command, "--processes", "2", "--cpu-devices", "2", "--", *script, str(tmp_path / "two.npz")],
                         cwd=tmp_path, env=stage_env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert two.returncode == 0, two.stderr[-3000:]

    def runs(name: str) -> list[dict]:
        return [json.loads(path.read_text()) for path in sorted(tmp_path.glob(f"{name}.npz.process-*.json"))]

    # One process of four devices; two processes of two devices each, one run of four devices over both.
    assert runs("one") == [{"process_index": 0, "process_count": 1, "device_count": 4, "local_device_count": 4, "mesh_devices": 4}]
    assert runs("two") == [{"process_index": i, "process_count": 2, "device_count": 4, "local_device_count": 2, "mesh_devices": 4}
                           for i in (0, 1)]
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "two.npz") as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.fixture
def project(tmp_path, mnist_train, small_params):
    """Prepared data for the train stage (2,048 digits: 32 steps of 64 per epoch), small params."""
    images, labels = mnist_train
    save_npz(tmp_path / paths.TRAIN_NPZ, images=images[:2048], labels=labels[:2048])
    save_npz(tmp_path / paths.VAL_NPZ, images=images[2048:2304], labels=labels[2048:2304])
    write_json(tmp_path / paths.PREPARATION_JSON, {"deskew": False, "stroke_width": None})
    small_params(tmp_path, epochs=3)
    return tmp_path


def test_a_killed_process_stops_the_run_and_a_rerun_resumes(project, repo_root, stage_env, launch_command):
    command = [*launch_command, "--processes", "2", "--cpu-devices", "1", "--", sys.executable, "-m", "stages.train"]
    env = {**stage_env, "PYTHONPATH": str(repo_root)}  # the stage scripts are not installed: DVC runs them from the project root
    run = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not (project / paths.TRAIN.checkpoint).exists():
            assert run.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.2)
        import psutil

        workers = [p for p in psutil.Process(run.pid).children() if "stages.train" in " ".join(p.cmdline())]
        assert len(workers) == 2
        workers[1].send_signal(signal.SIGKILL)
        start = time.monotonic()
        _, stderr = run.communicate(timeout=60)
        assert time.monotonic() - start < 60 and run.returncode != 0
        assert "error: process 1 of 2 was killed by signal 9; stopped the others" in stderr
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    rerun = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming after epoch" in rerun.stdout
    assert (project / paths.MODEL / "model.msgpack").is_file() and (project / paths.TRAIN.metrics).is_file()


@pytest.mark.e2e
def test_dvc_runs_the_train_stage_as_two_processes(tmp_path, make_project, stage_env, edit_params):
    project = make_project(tmp_path, git=True)
    edit_params(project, {"preprocess.train_subset": 2200, "preprocess.test_subset": 500, "preprocess.val_size": 200,
                          "train.epochs": 1, "train.width": 8})
    pipeline = (project / "dvc.yaml").read_text()
    (project / "dvc.yaml").write_text(pipeline.replace(
        "cmd: python -m stages.train", "cmd: mnist-dvc launch --processes 2 --cpu-devices 1 -- python -m stages.train", 1))
    done = subprocess.run(["dvc", "repro", "train"], cwd=project, env=stage_env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "on 2 cpu device(s)" in done.stdout
    assert (project / paths.MODEL / "model.msgpack").is_file()
    status = subprocess.run(["dvc", "status", "train"], cwd=project, env=stage_env, capture_output=True, text=True, timeout=120)
    assert "up to date" in status.stdout
    shutil.rmtree(project / "data", ignore_errors=True)
