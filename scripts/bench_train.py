"""Training-step throughput on this machine -> results/bench/train_throughput.csv.

    python scripts/bench_train.py [--steps-cnn 20] [--steps-resnet 4]

Each variant runs in a fresh process, because the number of forced XLA host devices is fixed
when JAX starts. Models are the issue's reference ones: a 4-block CNN (32-64-128-256,
conv-BN-ReLU-maxpool) and ResNet-50, batch 64 at 64 px, forward + backward + AdamW.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from research.errors import cli
from research.outputs import write_csv, write_json
from research.provenance import provenance

# (model config, conv implementation, devices, dtype)
VARIANTS = [
    ("cnn_baseline", "native", 1, "float32"), ("cnn_baseline", "im2col", 1, "float32"),
    ("cnn_baseline", "native", 2, "float32"), ("cnn_baseline", "im2col", 2, "float32"),
    ("cnn_baseline", "native", 2, "bfloat16"),
    ("resnet50_multitask", "native", 1, "float32"), ("resnet50_multitask", "im2col", 1, "float32"),
    ("resnet50_multitask", "native", 2, "float32"), ("resnet50_multitask", "im2col", 2, "float32"),
]


def run_variant(name: str, impl: str, devices: int, dtype: str, steps: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    command = [sys.executable, __file__, "--variant", name, impl, dtype, str(steps)]
    out = subprocess.run(command, env=env, capture_output=True, text=True,
                         check=True).stdout.strip().splitlines()[-1]
    result = json.loads(out)
    levers = [f"{impl} convolutions", "reshape 2x2 max-pool" if name == "cnn_baseline" else "",
              f"{devices} forced host devices with pmap" if devices > 1 else "", dtype]
    return {"model": "cnn_4block" if name == "cnn_baseline" else "resnet50", "image_size": 64,
            "batch": 64, "dtype": dtype, "devices": devices, "conv_impl": impl,
            "images_per_s": round(result["images_per_s"], 1), "compile_s": round(result["compile_s"], 1),
            "levers": "; ".join(x for x in levers if x)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps-cnn", type=int, default=20)
    parser.add_argument("--steps-resnet", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("results/bench/train_throughput.csv"))
    parser.add_argument("--variant", nargs=4, metavar=("CONFIG", "IMPL", "DTYPE", "STEPS"),
                        help="measure one variant in this process (how each variant's process is run)")
    args = parser.parse_args()
    if args.variant:
        from research.training.bench import measure_variant

        name, impl, dtype, steps = args.variant
        print(json.dumps(measure_variant(name, impl, dtype, int(steps))))
        return
    rows = []
    for name, impl, devices, dtype in VARIANTS:
        steps = args.steps_cnn if name == "cnn_baseline" else args.steps_resnet
        rows.append(run_variant(name, impl, devices, dtype, steps))
        print(rows[-1], flush=True)
    write_csv(args.out, pd.DataFrame(rows))
    write_json(args.out.with_suffix(".json"), {"provenance": provenance(with_device=True),
                                               "cpu_count": os.cpu_count()})


if __name__ == "__main__":
    cli(main)()
