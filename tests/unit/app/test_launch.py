"""The launcher of `mnist-dvc launch` (mnist_dvc/app/launch.py): N local processes with their JAX
settings, all stopped when one fails or when the launcher itself is stopped. (Training through it:
tests/app/test_distributed.py.)"""

import os
import signal
import subprocess
import sys
import time

from mnist_dvc.app.launch import launch, process_environments


def test_when_one_process_fails_the_launcher_stops_the_others_at_once():
    sleeper = "import os, sys, time; sys.exit(3) if os.environ['JAX_PROCESS_ID'] == '1' else time.sleep(120)"
    environments = process_environments(dict(os.environ), 3, None)
    assert len({env["JAX_PROCESS_ID"] for env in environments}) == 3
    assert all(env["JAX_COORDINATOR_ADDRESS"].startswith("127.0.0.1:") for env in environments)
    start = time.monotonic()
    assert launch([sys.executable, "-c", sleeper], environments) == 3
    assert time.monotonic() - start < 30


def test_a_stopped_launcher_stops_every_process_it_started(stage_env, launch_command):
    import psutil

    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    run = subprocess.Popen([*launch_command, "--processes", "2", "--", *sleeper], env=stage_env, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(children := psutil.Process(run.pid).children()) < 2:
            assert time.monotonic() < deadline, "the launcher did not start its processes"
            time.sleep(0.1)
        run.terminate()
        assert run.wait(timeout=30) != 0
        psutil.wait_procs(children, timeout=15)
        assert not [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
