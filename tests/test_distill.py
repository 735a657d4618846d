"""Distillation: the mixed loss, the registry fields, and the teachers' targets on synthetic data."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from pathlib import Path

import jax
import ml_collections
import numpy as np
import pytest
from _tiny_run import smoke_config

from research.configs import experiments
from research.configs.experiments import Run
from research.configs.overrides import apply_overrides
from research.data import nonfaces, protocol
from research.inference import distribution_step
from research.models.factory import create_model
from research.predict.release import params_bytes
from research.training import distill
from research.training.loop import train_and_evaluate
from research.training.losses import multitask_loss
from research.training.state import create_train_state

LOSS = ml_collections.ConfigDict({"age_loss": "ldl", "ldl_sigma": 2.0, "label_smoothing": 0.1,
                                  "weights": {"age": 1.0, "gender": 0.5, "race": 0.5}})


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _cross_entropy(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return -(targets * np.log(_softmax(logits.astype(np.float64)))).sum(-1)


def _batch(seed: int = 0, n: int = 6) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    outputs = {"age": rng.normal(size=(n, 117)).astype(np.float32),
               "gender": rng.normal(size=(n, 2)).astype(np.float32),
               "race": rng.normal(size=(n, 5)).astype(np.float32)}
    batch = {"age": rng.integers(0, 90, n).astype(np.int32), "gender": rng.integers(0, 2, n).astype(np.int32),
             "race": np.array([0, 1, 2, -1, 4, 3][:n], np.int32), "weight": np.array([1, 1, 1, 1, 1, 0][:n],
                                                                                     np.float32),
             "teacher_age": _softmax(rng.normal(size=(n, 117))).astype(np.float32),
             "teacher_gender": _softmax(rng.normal(size=(n, 2))).astype(np.float32),
             "teacher_race": _softmax(rng.normal(size=(n, 5))).astype(np.float32)}
    return outputs, batch


def test_distilled_loss_is_the_mixture_of_label_and_teacher_targets():
    """Each head's mean loss with alpha equals (1 - alpha) x the label loss + alpha x the
    cross-entropy to the teacher, recomputed here in numpy over the real rows (the padding row and
    the missing ethnicity label masked as without distillation); alpha 0, or no teacher targets in
    the batch (validation), gives the plain loss."""
    outputs, batch = _batch()
    labels_only = {k: v for k, v in batch.items() if not k.startswith("teacher_")}
    plain_total, plain = multitask_loss(outputs, labels_only, LOSS)
    for same in (multitask_loss(outputs, batch, LOSS)[1], multitask_loss(outputs, labels_only, LOSS,
                                                                          distill_alpha=0.4)[1]):
        for head in plain:
            np.testing.assert_allclose(same[head], plain[head], rtol=1e-6)
    alpha = 0.4
    total, mixed = multitask_loss(outputs, batch, LOSS, distill_alpha=alpha)
    real = batch["weight"] > 0
    for head, mask in (("age", real), ("gender", real), ("race", real & (batch["race"] >= 0))):
        teacher = _cross_entropy(outputs[head], batch[f"teacher_{head}"])[mask].mean()
        np.testing.assert_allclose(mixed[head], (1 - alpha) * plain[head] + alpha * teacher, rtol=1e-5)
    assert not np.isclose(total, plain_total)
    np.testing.assert_allclose(total, sum(LOSS.weights[h] * mixed[h] for h in mixed), rtol=1e-6)


def test_a_run_without_distillation_keeps_its_registry_hash():
    """The distillation fields are left out of the repr when unused, so adding them changed no
    registered run's hash (stages take the repr as input); a distilled run shows them and its
    teachers' params files are inputs of its training stage."""
    assert repr(Run("c", "cpu")) == ("Run(config='c', profile='cpu', overrides=(), protocol='utkface', "
                                     "init_from='')")
    student = Run("c", "cpu", init_from="results/models/a",
                  distill_from=("results/models/a", "results/models/b"), distill_alpha=0.5)
    assert "distill_from=('results/models/a', 'results/models/b')" in repr(student)
    assert "distill_alpha=0.5" in repr(student)
    assert all("distill" not in repr(r) for r in experiments.RUNS.values() if not r.distill_from)


def test_a_run_distils_with_teachers_and_alpha_together_or_not_at_all():
    for teachers, alpha in (((), 0.5), (("results/models/a",), 0.0), (("results/models/a",), 1.5)):
        with pytest.raises(ValueError, match="distill_from and 0 < distill_alpha <= 1 together"):
            Run("c", "cpu", distill_from=teachers, distill_alpha=alpha)


def test_a_distilled_registry_entry_configures_its_teachers_and_resume_checks_their_weights(distill_root):
    """load_run_config turns the registry's fields into config.distill; a checkpoint records the
    teachers' params checksums, so a resumed run refuses teachers whose weights changed."""
    from research.configs import load_run_config
    from research.training.loop import check_resumable, training_config

    name = next(n for n, r in experiments.RUNS.items() if r.distill_from)
    config = load_run_config(name)
    assert list(config.distill.teachers) == list(experiments.RUNS[name].distill_from)
    assert config.distill.alpha == experiments.RUNS[name].distill_alpha
    _, smoke, teachers = distill_root
    student = _distilled(smoke, teachers[:1])
    meta = {"config": json.loads(json.dumps(training_config(student)))}
    assert meta["config"]["distill_params_sha256"] == [hashlib.sha256(
        (teachers[0] / "params.msgpack").read_bytes()).hexdigest()]
    check_resumable(meta, student, teachers[0])
    other = _distilled(smoke, teachers[1:])
    with pytest.raises(ValueError, match="distill"):
        check_resumable(meta, other, teachers[0])


def test_make_variables_name_the_teachers_params(monkeypatch):
    runs = {"student": Run("cnn_baseline", "cpu", distill_from=("results/models/t1", "results/models/t2"),
                           distill_alpha=0.5)}
    monkeypatch.setattr(experiments, "RUNS", runs)
    lines = experiments.make_variables().splitlines()
    assert ("DISTILL_FROM_student := results/models/t1/params.msgpack "
            "results/models/t2/params.msgpack") in lines


def _teacher_folder(folder: Path, config: ml_collections.ConfigDict, seed: int) -> Path:
    state = create_train_state(create_model(config.model), config, jax.random.key(seed), steps_per_epoch=4)
    blob = params_bytes(jax.device_get({"params": state.params, "batch_stats": state.batch_stats}))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.msgpack").write_bytes(blob)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    (folder / "metadata.json").write_text(json.dumps({"params_sha256": hashlib.sha256(blob).hexdigest()}))
    return folder


@pytest.fixture(scope="module")
def distill_root(tmp_path_factory, utk_writer):
    root = tmp_path_factory.mktemp("distill")
    config = smoke_config(root, utk_writer)
    # Teachers at two input sizes: each reads its own cache of the same rows.
    small = ml_collections.ConfigDict(config.to_dict())
    small.image_size = config.image_size - 8
    teachers = [_teacher_folder(root / "teacher_a", config, 1), _teacher_folder(root / "teacher_b", small, 2)]
    return root, config, teachers


def _distilled(config: ml_collections.ConfigDict, teachers: list[Path], alpha: float = 0.5):
    out = ml_collections.ConfigDict(config.to_dict())
    out.distill = ml_collections.ConfigDict({"teachers": [str(t) for t in teachers], "alpha": alpha})
    return out


def test_teacher_targets_are_the_teachers_mean_predictions_and_are_cached(distill_root, monkeypatch):
    root, config, teachers = distill_root
    student = _distilled(config, teachers)
    cached = protocol.open_protocol(config)
    rows, table = nonfaces.training_split(cached, "train", False)
    targets = distill.teacher_targets(student, table)
    assert set(targets) == set(distill.KEYS)
    assert targets["teacher_age"].shape == (len(table), 117)
    np.testing.assert_allclose(targets["teacher_gender"].sum(-1), 1.0, atol=1e-5)

    expected = []  # each teacher by hand on its own cache, then their mean
    for folder in teachers:
        teacher = distill.load_teacher(folder)
        own = ml_collections.ConfigDict(config.to_dict())
        own.image_size = teacher.image_size
        own_cache = protocol.open_protocol(own)
        own_rows, _ = nonfaces.training_split(own_cache, "train", False)
        step = functools.partial(distribution_step, apply_fn=create_model(teacher.config.model).apply,
                                 tta_flip=False, weights=(1.0,))
        expected.append(np.asarray(step((teacher.variables,), own_cache.images[own_rows])["age_probs"]))
    assert not np.allclose(expected[0], expected[1], atol=1e-4)  # two different teachers
    np.testing.assert_allclose(targets["teacher_age"], np.mean(expected, axis=0), atol=1e-5)
    assert list((root / "cache" / "distill").glob("*.npz"))

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cached targets should have been read")

    monkeypatch.setattr(distill, "teacher_predictions", must_not_run)
    again = distill.teacher_targets(student, table)
    np.testing.assert_array_equal(again["teacher_age"], targets["teacher_age"])
    assert distill.teacher_targets(config, table) == {}  # not distilled: nothing


def test_bad_teachers_and_alpha_are_refused_by_name(distill_root, tmp_path):
    root, config, teachers = distill_root
    _, table = nonfaces.training_split(protocol.open_protocol(config), "train", False)
    with pytest.raises(ValueError, match="distill.alpha"):
        distill.teacher_targets(_distilled(config, teachers, alpha=1.5), table)
    with pytest.raises(ValueError, match="distill.alpha is 0.5 but distill.teachers is empty"):
        distill.teacher_targets(_distilled(config, []), table)
    with pytest.raises(ValueError, match="distill teacher .*params.msgpack is missing"):
        distill.teacher_targets(_distilled(config, [tmp_path / "nowhere"]), table)
    elsewhere = _teacher_folder(tmp_path / "coral_teacher", apply_overrides(config, {"protocol": "coral"}), 4)
    with pytest.raises(ValueError, match="trained on the 'coral' protocol"):
        distill.teacher_targets(_distilled(config, [elsewhere]), table)
    broken = _teacher_folder(tmp_path / "broken", config, 3)
    (broken / "params.msgpack").write_bytes(b"not the teacher")
    with pytest.raises(ValueError, match="sha256"):
        distill.teacher_targets(_distilled(config, [broken]), table)


def test_a_distilled_run_trains_and_its_loss_differs_from_the_undistilled(distill_root, tmp_path):
    """The same smoke run with and without teachers: both train (the targets reach the step), and
    their first-epoch training losses differ (the teachers' targets are in the loss)."""
    root, config, teachers = distill_root
    one = ml_collections.ConfigDict(config.to_dict())
    one.optimizer.num_epochs = 1
    plain = train_and_evaluate(one, tmp_path / "plain")
    taught = train_and_evaluate(_distilled(one, teachers, alpha=0.9), tmp_path / "taught")
    history = [json.loads((tmp_path / name / "metrics.jsonl").read_text().splitlines()[0])
               for name in ("plain", "taught")]
    assert history[0]["train/loss"] != pytest.approx(history[1]["train/loss"], rel=1e-3)
    assert plain["train_images"] == taught["train_images"]


def test_a_distilled_run_and_its_control_differ_only_in_the_teachers():
    """The report calls each DISTILLATION_CONTROLS pair "the same start, rates, seed and schedule"."""
    for student, control in experiments.DISTILLATION_CONTROLS.items():
        mine, theirs = experiments.RUNS[student], experiments.RUNS[control]
        assert mine.distill_from and not theirs.distill_from
        assert dataclasses.replace(mine, distill_from=(), distill_alpha=theirs.distill_alpha) == theirs
