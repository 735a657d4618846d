"""Run a command as N processes of one jax.distributed job on this machine (tests, rehearsals).

    python scripts/launch_local.py --num-processes 2 -- \\
        python scripts/train.py --config cnn_baseline --profile smoke --workdir smoke/cnn_baseline_2proc

Coordinator on 127.0.0.1 at a port free at start; each process gets --devices-per-process
forced CPU devices; output prefixed [p0], [p1], ...; if one process fails the others are
stopped. Exit status: the worst of those that failed (0 if all succeed).
Real clusters: docs/multihost.md.
"""

import argparse
import sys

from research.training.launch import launch_local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--num-processes", "-n", type=int, default=2)
    parser.add_argument("--devices-per-process", type=int, default=1, help="forced XLA CPU devices each")
    parser.add_argument("--timeout", type=float, help="stop every process after this many seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command each process runs")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    sys.exit(launch_local(command, args.num_processes, args.devices_per_process, args.timeout))


if __name__ == "__main__":
    main()
