"""CNN baseline on the CORAL benchmark split (ages 21-60); otherwise as `cnn_baseline`.

Run:  python scripts/train.py --config cnn_baseline_coral --profile cpu
"""

from research.configs import cnn_baseline


def get_config(profile: str = "cpu"):
    c = cnn_baseline.get_config(profile)
    c.name = "cnn_baseline_coral"
    c.protocol = "coral"
    return c
