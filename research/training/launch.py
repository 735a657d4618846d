"""Start N processes of one command on this machine as one jax.distributed job (tests, rehearsals).

Each child gets JAX_COORDINATOR_ADDRESS (127.0.0.1 and a port free at start), JAX_NUM_PROCESSES,
JAX_PROCESS_ID and XLA_FLAGS forcing its number of CPU devices; its output is forwarded line by
line with a ``[pN]`` prefix. When one child fails the others are stopped (they would wait for it
in the next collective), and Ctrl-C or SIGTERM stops them all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

POLL_SECONDS = 0.1
GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL when stopping children


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_environment(process_id: int, num_processes: int, port: int, devices_per_process: int) -> dict:
    env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES=str(num_processes),
               JAX_PROCESS_ID=str(process_id), PYTHONUNBUFFERED="1")
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join([*flags, f"--xla_force_host_platform_device_count={devices_per_process}"])
    return env


def _forward(stream, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        # tqdm redraws with carriage returns; keep each redraw on its own prefixed line.
        for part in line.rstrip("\n").split("\r"):
            if part:
                sys.stdout.write(f"{prefix} {part}\n")
                sys.stdout.flush()
    stream.close()


def exit_status(returncode: int) -> int:
    """A shell-style status: a child killed by signal S counts as 128 + S."""
    return 128 - returncode if returncode < 0 else returncode


class _Terminated(Exception):
    """The launcher itself got SIGTERM."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.time() + GRACE_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.time(), 0.01))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def launch_local(command: Sequence[str], num_processes: int, devices_per_process: int = 1,
                 timeout: float | None = None) -> int:
    """Run ``command`` as processes 0..N-1 of one job; returns the worst exit status.

    The worst status is the highest among the children that failed on their own (those the
    launcher then stops do not count); 0 when all succeed; 124 after ``timeout`` seconds; 130 on Ctrl-C and
    143 on SIGTERM (the children are stopped in every case). Call it from the main thread.
    """
    if num_processes < 1:
        raise ValueError(f"num_processes must be at least 1, got {num_processes}")
    port = free_port()
    children, threads = [], []
    for process_id in range(num_processes):
        # Each child leads its own process group, so stopping it stops what it started too.
        child = subprocess.Popen(list(command), env=child_environment(process_id, num_processes, port,
                                                                      devices_per_process),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True)
        children.append(child)
        thread = threading.Thread(target=_forward, args=(child.stdout, f"[p{process_id}]"), daemon=True)
        thread.start()
        threads.append(thread)
    status, start = 0, time.time()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # a stopped launcher stops its children
    try:
        while None in [child.poll() for child in children]:  # a list: poll every child, not the first
            failed = [exit_status(c.returncode) for c in children if c.returncode not in (None, 0)]
            if failed:
                status = max(failed)
                break
            if timeout is not None and time.time() - start > timeout:
                print(f"launch_local: stopping all processes after {timeout:.0f} s", file=sys.stderr)
                status = 124
                break
            time.sleep(POLL_SECONDS)
        else:
            status = max(exit_status(c.returncode) for c in children)
    except KeyboardInterrupt:
        status = 130
    except _Terminated:
        status = 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(children)
        for thread in threads:
            thread.join(timeout=GRACE_SECONDS)
    return status
