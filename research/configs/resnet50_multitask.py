"""ResNet-50 (bottleneck [3, 4, 6, 3], BatchNorm) with age, gender and ethnicity heads, `utkface`.

Run:  python scripts/train.py --config resnet50_multitask --profile gpu   (a lent H100)
      python scripts/train.py --config resnet50_multitask --profile cpu   (reduced: 64 px)
Profiles: smoke (a tiny ResNet, seconds), cpu (64 px, 3x3 stem, a few epochs: a reduced run,
labelled as such), gpu (full 200 px, bf16, from scratch). Results: results/runs/resnet50_multitask/.
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
        c.image_size = 64
        c.model.small_input_stem = True
        c.optimizer.num_epochs = 6
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
