"""dlib's face-recognition ResNet (29 convs, trained on faces), fine-tuned with age, gender and
ethnicity heads.

Run:  python scripts/train.py --run dlib_resnet_multitask_cpu   (face-recognition weights)
      python scripts/train.py --run dlib_resnet_scratch_cpu     (the control: random weights and real
          BatchNorm; its overrides are SCRATCH_CONTROLS in research/configs/experiments.py)
Weights: the face_recognition_models package (dlib-models, CC0), converted once into
data/pretrained/. Its 68-point landmark model (not for commercial use) is never used.
Profiles: smoke (the full network at 112 px on 128 images); cpu (112 px, 4 epochs on one device:
measured 26 training images/s on the idle 2 cores, synthetic batches, so about 10 minutes an
epoch); gpu (150 px, bf16, 20 epochs).
Results: results/runs/<run name>/ (dlib_resnet_multitask_cpu, dlib_resnet_scratch_cpu).

Choices: dlib trained on 150x150 chips from dlib.get_face_chip at padding 0.25 (the face box
is 1/1.5 of the chip); UTKFace's 200x200 chips are framed about like padding 0.2 (1/1.4), so
the model shrinks each image by 1.4/1.5 about its centre (``model.frame_scale``, grey border)
and maps it to dlib's input normalisation ((pixel - mean RGB) / 256). The file holds affine
layers (BatchNorm folded), not statistics, so the pretrained trunk keeps them as they are
(``trunk_bn='frozen'``: scale and bias train, nothing is renormalised); the scratch control
needs real BatchNorm (``trunk_bn='batch'``). Heads on the 256-D pooled features, not on the
128-D descriptor (a metric-learning projection).
"""

from research.configs.base import apply_finetuning, apply_smoke_schedule, base_config

UTKFACE_PADDING = 0.2
DLIB_PADDING = 0.25


def get_config(profile: str = "gpu"):
    c = base_config("dlib_resnet_multitask", profile)
    c.data.pretrained_cache = "data/pretrained"
    c.model.name = "dlib_resnet"
    c.model.init = "face"  # or "scratch" (the control)
    c.model.input_norm = "dlib"
    c.model.frame_scale = (1 + 2 * UTKFACE_PADDING) / (1 + 2 * DLIB_PADDING)
    c.model.trunk_bn = "frozen"
    c.image_size = 150
    apply_finetuning(c)
    # dlib's kernels are small (mean |w| 3e-3 to 1e-2) and scaled up by the folded affine layers,
    # with nothing renormalising them: Adam's steps of about lr per weight moved the trunk's kernels
    # by 6-14% (relative norm) in the first cpu epoch at 0.1 x 1e-3, and validation MAE was 11.7
    # after it (a ridge probe on the frozen descriptor gives 7.7). One hundredth keeps the drift
    # near 1% an epoch.
    c.optimizer.trunk_lr_scale = 0.01
    if profile == "smoke":
        c.image_size = 112  # the network's smallest input is 103 px
        c.optimizer.warmup_epochs = 0.5
        c = apply_smoke_schedule(c)
        c.data.max_train_images = 128
        return c
    if profile == "cpu":
        c.name = "dlib_resnet_multitask_cpu"  # never overwrite the full (gpu) run's results
        c.image_size = 112
        c.num_devices = 1
        c.optimizer.num_epochs = 4
    if profile == "gpu":
        c.batch_size = 128
        c.model.dtype = "bfloat16"
        c.optimizer.warmup_epochs = 2.0
        c.optimizer.trunk_freeze_epochs = 1.0
        c.optimizer.num_epochs = 20
        c.eval.batch_size = 512
    return c
