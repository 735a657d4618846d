"""CNN baseline, multi-task (age + gender + ethnicity), protocol `utkface`.

Run:  python scripts/train.py --config cnn_baseline --profile cpu
Profiles: smoke (seconds, tests), cpu (8 conv layers at 64 px, ~1 h on the 2-core CPU),
gpu (same net at 128 px). What it reached is in results/runs/cnn_baseline/summary.json.
"""

from research.configs.base import apply_smoke, base_config


def get_config(profile: str = "cpu"):
    c = base_config("cnn_baseline", profile)
    # Measured here (results/bench): XLA's native convolutions beat im2col for this small net.
    c.model.conv_impl = "native"
    if profile == "smoke":
        return apply_smoke(c)
    if profile == "gpu":
        c.image_size = 128
        c.batch_size = 256
        c.optimizer.num_epochs = 40
        c.model.dtype = "bfloat16"
    return c
