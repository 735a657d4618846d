"""ResNet-50 multi-task on the CORAL benchmark split (ages 21-60); otherwise as `resnet50_multitask`.

Run:  python scripts/train.py --config resnet50_multitask_coral --profile gpu
"""

from research.configs import resnet50_multitask


def get_config(profile: str = "gpu"):
    c = resnet50_multitask.get_config(profile)
    c.name = "resnet50_multitask_coral" + ("_cpu" if profile == "cpu" else "")
    c.protocol = "coral"
    return c
