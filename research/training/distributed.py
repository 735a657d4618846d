"""Several processes training one model: joining a ``jax.distributed`` job and the device layout.

One process per host (or several on one machine for tests, scripts/launch_local.py), each with
its local devices; the pmap'd step runs over the devices of all processes, in process order, so
that global device ``g`` gets the same slice of a global batch whatever the process count.
With one process every function here is a no-op or returns what a single process always had.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable
from typing import TypeVar

import jax
import numpy as np
from jax._src import distributed as jax_distributed
from jax.experimental import multihost_utils

T = TypeVar("T")

# Launchers that start one process per task and that jax.distributed can read the layout from.
CLUSTER_SIZE_VARIABLES = ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")
BARRIER_TIMEOUT_S = 3600  # e.g. process 0 decoding the image cache while the others wait


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--coordinator, --num-processes, --process-id (each defaults to its JAX_* variable)."""
    group = parser.add_argument_group("several processes (docs/multihost.md)")
    group.add_argument("--coordinator", help="host:port of process 0 (else $JAX_COORDINATOR_ADDRESS)")
    group.add_argument("--num-processes", type=int, help="processes in the job (else $JAX_NUM_PROCESSES)")
    group.add_argument("--process-id", type=int, help="this process, 0..N-1 (else $JAX_PROCESS_ID)")


def _env_int(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> int:
    """Join the job described by the arguments, else JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
    JAX_PROCESS_ID, else SLURM or Open MPI (jax.distributed reads their variables); returns the
    number of processes. One process (nothing set) is a no-op, so single-host runs are unchanged.

    Must run before anything touches a JAX device.
    """
    num_processes = num_processes or _env_int("JAX_NUM_PROCESSES")
    if num_processes is None:
        num_processes = max((_env_int(name) or 1 for name in CLUSTER_SIZE_VARIABLES), default=1)
    if num_processes <= 1:
        return 1
    if jax.distributed.is_initialized():
        return jax.process_count()
    # CPU collectives across processes need gloo (the default has none); GPUs use NCCL regardless.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID")
    jax.distributed.initialize(coordinator_address=coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS"),
                               num_processes=num_processes, process_id=process_id)
    sys.excepthook = _exit_at_once
    # A first collective over every device while all processes are here: the CPU (gloo) one
    # sets up its connections now, which fails when a peer is more than 30 s late (later
    # collectives wait as long as it takes, e.g. for a process still compiling).
    multihost_utils.process_allgather(np.int32(jax.process_index()))
    return jax.process_count()


def _exit_at_once(kind, value, trace) -> None:
    """Print an uncaught error and exit without jax.distributed's shutdown barrier, which would
    wait (minutes) for processes that are themselves waiting for this one in a collective; the
    launcher (scripts/launch_local.py, srun --kill-on-bad-exit) then stops the others."""
    traceback.print_exception(kind, value, trace)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def initialize_from_args(args: argparse.Namespace) -> int:
    """``initialize`` with the flags of ``add_flags``."""
    return initialize(args.coordinator, args.num_processes, args.process_id)


def is_primary() -> bool:
    """Process 0: the one that writes results files and prints."""
    return jax.process_index() == 0


def global_devices(local: list) -> list:
    """The first ``len(local)`` local devices of every process, process by process.

    pmap needs the same device list in every process; every process uses the same count.
    """
    if jax.process_count() == 1:
        return local
    by_process: dict[int, list] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    short = {p: len(d) for p, d in by_process.items() if len(d) < len(local)}
    if short:
        raise ValueError(f"every process must have {len(local)} devices; processes with fewer: {short}")
    return [d for p in sorted(by_process) for d in by_process[p][: len(local)]]


def check_global_batch(batch_size: int, devices_per_process: int, num_processes: int) -> None:
    """The global batch must split evenly over every device of every process."""
    total = devices_per_process * num_processes
    if batch_size % total == 0:
        return
    if num_processes == 1:
        raise ValueError(f"batch_size {batch_size} does not divide evenly over {total} devices")
    raise ValueError(f"batch_size {batch_size} (global) does not divide evenly over {num_processes} "
                     f"processes x {devices_per_process} devices = {total} devices; set config.batch_size "
                     f"to a multiple of {total}")


def barrier(name: str, timeout_s: int = BARRIER_TIMEOUT_S) -> None:
    """Wait until every process gets here (a no-op with one process).

    A barrier of the coordination service rather than a collective, which would hold a device
    and a connection for as long as process 0 builds a cache.
    """
    if jax.process_count() > 1:
        jax_distributed.global_state.client.wait_at_barrier(name, timeout_in_ms=timeout_s * 1000)


def primary_first(make: Callable[[], T], name: str) -> T:
    """``make()`` on process 0, then on the others: e.g. building a shared cache only once."""
    if jax.process_count() == 1:
        return make()
    result = make() if is_primary() else None
    barrier(name)
    return result if is_primary() else make()
