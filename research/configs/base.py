"""Defaults shared by every experiment; experiment files override what differs."""

import ml_collections


def base_config(name: str, profile: str) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.name = name
    c.profile = profile
    c.seed = 0
    c.protocol = "utkface"  # or "coral"
    c.image_size = 64
    c.num_devices = 0  # 0: every local device
    c.batch_size = 64  # global; must divide evenly over the devices

    c.data = ml_collections.ConfigDict()
    c.data.path = ""  # archive or folder; "" -> --data flag, $UTKFACE, data/raw, ../shared/data
    c.data.split_dir = "results/splits"
    c.data.cache_root = "data/cache"
    c.data.max_train_images = 0  # 0: all (smoke runs use a subset)
    c.data.max_eval_images = 0
    # Leave the reviewed non-face crops (research/configs/nonfaces.py) out of training and its
    # validation; off: every committed run trained on all clean crops. Test always keeps them.
    c.data.exclude_nonfaces = False

    c.model = ml_collections.ConfigDict()
    c.model.name = "cnn"
    c.model.widths = (32, 64, 128, 256)
    c.model.convs_per_stage = 2
    c.model.stage_sizes = (3, 4, 6, 3)
    c.model.num_filters = 64
    c.model.small_input_stem = False
    c.model.age_head = "classification"
    c.model.dropout = 0.2
    c.model.conv_impl = "auto"  # im2col on CPU, native on GPU
    c.model.dtype = "float32"

    c.loss = ml_collections.ConfigDict()
    c.loss.age_loss = "ldl"  # ce | ldl (classification head), l1 | l2 (regression head)
    c.loss.ldl_sigma = 2.0
    c.loss.label_smoothing = 0.05
    c.loss.weights = ml_collections.ConfigDict({"age": 1.0, "gender": 1.0, "race": 1.0})

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.weight_decay = 1e-4
    c.optimizer.momentum = 0.9
    c.optimizer.clip_norm = 1.0
    c.optimizer.warmup_epochs = 1.0
    c.optimizer.final_lr_fraction = 0.01
    c.optimizer.num_epochs = 12

    c.augment = ml_collections.ConfigDict()
    c.augment.enabled = True
    c.augment.flip = True
    c.augment.max_scale_delta = 0.1
    c.augment.max_shift = 0.06  # fraction of the image size
    c.augment.brightness = 0.2  # in normalised units
    c.augment.contrast = 0.2
    # The corruption benchmark's train-time counterparts (research/training/augment.py ROBUST): the
    # probability each is applied to an image, all 0 (off: training as before); then their strength.
    c.augment.grayscale = 0.0
    c.augment.colour_cast = 0.0
    c.augment.gamma = 0.0
    c.augment.low_resolution = 0.0
    c.augment.blur = 0.0
    c.augment.jpeg = 0.0
    c.augment.noise = 0.0
    c.augment.colour_cast_max_log_gain = 0.3  # white-balance gain up to exp(0.3) along a chroma direction
    c.augment.gamma_max_log = 0.5  # gamma in [exp(-0.5), exp(0.5)]
    c.augment.low_resolution_min_px = 16  # downscaled to 16 .. size - 1 px, then back up
    c.augment.blur_max_sigma = 1.2  # px at the input size
    c.augment.jpeg_quality = (10, 50)  # a quality drawn from this range
    c.augment.noise_max_std = 0.06  # of the [0, 1] pixel range

    c.eval = ml_collections.ConfigDict()
    c.eval.tta_flip = True
    c.eval.batch_size = 256
    c.log_every_steps = 50
    return c


def apply_smoke_schedule(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The smoke profile's data and schedule (any model): small batches, few images, two epochs."""
    c.batch_size = 16
    c.data.max_train_images = 256
    c.data.max_eval_images = 128
    c.optimizer.num_epochs = 2
    c.eval.batch_size = 64
    c.log_every_steps = 4
    return c


def apply_smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Seconds-long runs for tests and rehearsals: tiny images, model and data."""
    c.image_size = 32
    c.model.widths = (8, 16)
    c.model.convs_per_stage = 1
    c.model.stage_sizes = (1, 1, 1, 1)
    c.model.num_filters = 8
    return apply_smoke_schedule(c)


def apply_finetuning(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """What fine-tuning a pretrained trunk needs (the pretrained backbones' configs share it): a
    lower rate for the trunk, frozen at first while the new heads settle, warm-up, BatchNorm
    statistics updated slowly."""
    c.model.bn_momentum = 0.9
    c.model.dropout = 0.2
    c.optimizer.learning_rate = 1e-3
    c.optimizer.weight_decay = 0.01
    c.optimizer.trunk_lr_scale = 0.1
    c.optimizer.trunk_freeze_epochs = 0.5
    c.optimizer.warmup_epochs = 1.0
    return c
