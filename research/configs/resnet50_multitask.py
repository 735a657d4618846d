"""ResNet-50 (bottleneck [3, 4, 6, 3], BatchNorm) with age, gender and ethnicity heads, `utkface`.

Run:  python scripts/train.py --config resnet50_multitask --profile gpu   (a lent H100)
      python scripts/train.py --config resnet50_multitask --profile cpu   (reduced: 64 px)
Profiles: smoke (a tiny ResNet, seconds); cpu (64 px, 7 epochs, im2col convolutions on one
device, ~80 images/s here: a reduced run, marked "reduced_run" in its summary, about 35 minutes);
gpu (full 200 px, bf16, 30 epochs from scratch: about 6 minutes on one H100).
Results: results/runs/resnet50_multitask/ (gpu) and results/runs/resnet50_multitask_cpu/ (cpu).
"""

from research.configs.base import apply_smoke, base_config


def get_config(profile: str = "gpu"):
    c = base_config("resnet50_multitask", profile)
    c.model.name = "resnet"
    c.model.stage_sizes = (3, 4, 6, 3)
    c.model.dropout = 0.2
    c.optimizer.weight_decay = 0.05
    if profile == "smoke":
        return apply_smoke(c)
    if profile == "cpu":
        c.name = "resnet50_multitask_cpu"  # never overwrite the full (gpu) run's results
        c.image_size = 64
        # results/bench: im2col on 1 device beat 2 forced devices for ResNet-50 (79 vs 73 img/s).
        c.num_devices = 1
        c.optimizer.num_epochs = 7
        c.optimizer.warmup_epochs = 0.5
    if profile == "gpu":
        # On the lent H100 a 128 px, 16-epoch trial ran at ~7,000 images/s (2 s an epoch).
        c.image_size = 200
        c.batch_size = 128
        c.model.dtype = "bfloat16"
        c.optimizer.learning_rate = 2e-3
        c.optimizer.warmup_epochs = 2
        c.optimizer.num_epochs = 30
        c.eval.batch_size = 512
    return c
