"""Starting one command as N cooperating JAX processes on this machine, for trying a multi-process
run and for the tests: each gets JAX's settings (coordinator on 127.0.0.1, process count, its id)
and, on CPU, its own number of devices. If one process fails, the others are stopped at once, so
a run never hangs waiting for a dead participant."""

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

POLL_S = 0.2
GRACE_S = 10.0  # between asking a process to stop and killing it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_environments(base: Mapping[str, str], processes: int, cpu_devices: int | None) -> list[dict[str, str]]:
    """The environment of each of `processes` processes: `base` plus JAX_COORDINATOR_ADDRESS (a free
    port on 127.0.0.1), JAX_NUM_PROCESSES, JAX_PROCESS_ID and, if given, JAX_NUM_CPU_DEVICES."""
    coordinator = f"127.0.0.1:{free_port()}"
    devices = {} if cpu_devices is None else {"JAX_NUM_CPU_DEVICES": str(cpu_devices)}
    return [{**base, "JAX_COORDINATOR_ADDRESS": coordinator, "JAX_NUM_PROCESSES": str(processes), "JAX_PROCESS_ID": str(i), **devices}
            for i in range(processes)]


def stop(children: list[subprocess.Popen]) -> None:
    """Asks every running child to stop, then kills those still running after `GRACE_S`."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for child in children:
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds through launch's `finally`, which stops the children


def launch(command: Sequence[str], environments: list[dict[str, str]]) -> int:
    """Runs `command` once per environment and waits: 0 when all succeed; as soon as one fails,
    stops the others and returns its exit status, after saying which one it was on stderr. Stopped
    itself (Ctrl-C, SIGTERM), it stops every process it started before it exits."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    children = [subprocess.Popen(list(command), env=env) for env in environments]
    try:
        while True:
            codes = [child.poll() for child in children]
            failed = next((i for i, code in enumerate(codes) if code not in (None, 0)), None)
            if failed is not None:
                code = codes[failed]
                how = f"exited with status {code}" if code > 0 else f"was killed by signal {-code}"
                print(f"error: process {failed} of {len(children)} {how}; stopped the others "
                      "(a rerun resumes from the last checkpoint)", file=sys.stderr)
                return code if code > 0 else 128 - code
            if all(code == 0 for code in codes):
                return 0
            time.sleep(POLL_S)
    finally:
        stop(children)
