"""Training engine: the step on one batch, pmap on 2 forced CPU devices against 1, checkpoints,
resumption, the NaN stop, config overrides, and the whole loop end to end on synthetic data."""

import functools
import hashlib
import json
from pathlib import Path

import jax
import ml_collections
import numpy as np
import optax
import pandas as pd
import pytest
from _synthetic_release import write_tiny_release
from _tiny_run import smoke_config, trained_run
from flax import jax_utils

from research.configs import load_config
from research.configs.overrides import apply_overrides, parse_value
from research.data import archive, pipeline
from research.errors import ConfigError
from research.models.factory import create_model
from research.predict.release import params_bytes
from research.provenance import git_commit
from research.runs import checkpoints
from research.training.bench import synthetic_batch
from research.training.loop import NonFiniteLossError, local_devices, train_and_evaluate
from research.training.state import TrainState, create_train_state
from research.training.steps import AXIS, train_step

# Deterministic steps (no augmentation, no dropout) on 16 px images.
STEP_OVERRIDES = {"image_size": 16, "model.dropout": 0.0, "augment.enabled": False,
                  "optimizer.learning_rate": 3e-2, "optimizer.warmup_epochs": 0.0,
                  "optimizer.num_epochs": 1}
TIMING_KEYS = ("epoch_seconds", "images_per_s")


@pytest.fixture(scope="module")
def step_config():
    return apply_overrides(load_config("cnn_baseline", "smoke"), STEP_OVERRIDES)


@pytest.fixture(scope="module")
def initial_state(step_config):
    return create_train_state(create_model(step_config.model), step_config, jax.random.key(0),
                              steps_per_epoch=30)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, utk_writer) -> Path:
    return trained_run(tmp_path_factory.getbasetemp() / "tiny_run", utk_writer)


def tree_equal(a, b) -> None:
    jax.tree_util.tree_map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))


# --- steps ---------------------------------------------------------------------------------------

def test_loss_falls_when_overfitting_one_batch(step_config, initial_state):
    step = jax.jit(functools.partial(train_step, config=step_config, axis_name=None))
    batch, key, state, losses = synthetic_batch(16, 16, seed=0), jax.random.key(1), initial_state, []
    for _ in range(30):
        state, metrics = step(state, batch, key)
        losses.append(float(metrics["loss"]))
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.6 * losses[0], losses
    assert int(state.step) == 30
    assert float(metrics["n"]) == 16


def pmap_step(state, batch, config, num_devices):
    """One train step over ``num_devices`` devices on the same global batch (state unreplicated)."""
    devices = jax.local_devices()[:num_devices]
    step = jax.pmap(functools.partial(train_step, config=config, axis_name=AXIS), axis_name=AXIS,
                    devices=devices)
    new, metrics = step(jax_utils.replicate(state, devices=devices), pipeline.shard(batch, num_devices),
                        jax_utils.replicate(jax.random.key(1), devices=devices))
    # Gradients are psum'd, so every replica holds the same parameters.
    for replica in range(1, num_devices):
        tree_equal(jax.tree_util.tree_map(lambda x, r=replica: x[r], new.params),
                   jax.tree_util.tree_map(lambda x: x[0], new.params))
    first = functools.partial(jax.tree_util.tree_map, lambda x: x[0])
    return first(new), jax.device_get(first(metrics))


def test_pmap_on_two_devices_matches_one_device(step_config, initial_state):
    assert jax.local_device_count() >= 2, "tests/conftest.py must force 2 CPU devices (XLA_FLAGS)"
    # Plain SGD with learning rate 1: new params = params - gradient, so gradients can be read off.
    state = TrainState.create(apply_fn=create_model(step_config.model, axis_name=AXIS).apply,
                              params=initial_state.params, batch_stats=initial_state.batch_stats,
                              tx=optax.sgd(1.0))
    batch = synthetic_batch(8, 16, seed=5)
    batch["race"][:3] = -1  # all on device 0: per-device masks differ
    batch["weight"][7] = 0.0  # a padding row on device 1
    results = {n: pmap_step(state, batch, step_config, n) for n in (1, 2)}
    (one, m1), (two, m2) = results[1], results[2]
    for name in m1:
        np.testing.assert_allclose(m2[name], m1[name], rtol=1e-5, err_msg=name)
    assert m1["n"] == 7 and m1["race_n"] == 4

    def gradient(new):
        return jax.tree_util.tree_map(lambda p, q: np.asarray(p) - np.asarray(q), state.params, new.params)

    g1, g2 = gradient(one), gradient(two)
    assert max(float(np.abs(g).max()) for g in jax.tree_util.tree_leaves(g1)) > 1e-3
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6), g1, g2)
    # BatchNorm statistics are synchronised over the 'batch' axis: the same as on one device.
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6),
                           jax.device_get(one.batch_stats), jax.device_get(two.batch_stats))


def test_batch_not_divisible_by_devices_is_a_clear_error(tmp_path):
    batch = synthetic_batch(15, 8, seed=0)
    with pytest.raises(ValueError, match="batch size 15 does not divide evenly over 2 devices"):
        pipeline.shard(batch, 2)
    config = apply_overrides(load_config("cnn_baseline", "smoke"), {"batch_size": 15, "num_devices": 2})
    with pytest.raises(ValueError, match="batch_size 15 does not divide evenly over 2 devices"):
        local_devices(config)
    with pytest.raises(ValueError, match="batch_size 15"):
        train_and_evaluate(config, tmp_path / "run")
    too_many = apply_overrides(config, {"batch_size": 16, "num_devices": jax.local_device_count() + 1})
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        local_devices(too_many)
    assert len(local_devices(apply_overrides(config, {"batch_size": 16}))) == 2


# --- checkpoints ---------------------------------------------------------------------------------

def test_checkpoint_round_trip_is_exact(tmp_path, step_config, initial_state):
    rng = np.random.default_rng(0)
    noise = jax.tree_util.tree_map(lambda p: rng.normal(size=p.shape).astype(p.dtype), initial_state.params)
    state = initial_state.apply_gradients(grads=noise)
    state = state.replace(batch_stats=jax.tree_util.tree_map(lambda s: s + 0.5, state.batch_stats))
    meta = {"epoch": 3, "history": [{"epoch": 1, "val/age_mae": 12.25}]}
    checkpoints.save(tmp_path / "last", 3, state, meta)
    checkpoints.save(tmp_path / "last", 4, state, {**meta, "epoch": 4})
    assert checkpoints.latest_step(tmp_path / "last") == 4
    target = create_train_state(create_model(step_config.model), step_config, jax.random.key(9), 30)
    with pytest.raises(AssertionError):
        tree_equal(target.params, state.params)
    restored, restored_meta = checkpoints.restore(tmp_path / "last", target)
    assert restored_meta == {**meta, "epoch": 4}
    assert int(restored.step) == int(state.step) == 1
    for part in ("params", "batch_stats", "opt_state"):
        tree_equal(getattr(restored, part), getattr(state, part))
        assert (jax.tree_util.tree_map(lambda x: np.asarray(x).dtype, getattr(restored, part))
                == jax.tree_util.tree_map(lambda x: np.asarray(x).dtype, getattr(state, part)))


def test_restore_without_checkpoint_is_a_clear_error(tmp_path, initial_state):
    assert checkpoints.latest_step(tmp_path / "missing") is None
    with pytest.raises(FileNotFoundError, match="no checkpoint under"):
        checkpoints.restore(tmp_path / "missing", initial_state)


# --- the loop end to end -------------------------------------------------------------------------

def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in records]


def test_train_and_evaluate_writes_a_complete_run(tiny_run):
    root = tiny_run.parent
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["name"] == "cnn_baseline" and config["profile"] == "smoke"
    assert config["data"]["split_dir"] == str(root / "splits")
    records = read_jsonl(tiny_run / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2] and [r["step"] for r in records] == [2, 4]
    for record in records:
        assert all(np.isfinite(v) for k, v in record.items() if k != "epoch")
        assert 0 <= record["val/gender_accuracy"] <= 1 and record["val/age_mae"] > 0
    history = pd.read_csv(tiny_run / "history.csv")
    assert len(history) == len(records)
    for row, record in zip(history.to_dict("records"), records, strict=True):
        assert row == pytest.approx(record)
    assert (tiny_run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["epochs"] == 2 and summary["train_images"] == 32 and summary["val_images"] == 8
    best = min(records, key=lambda r: r["val/age_mae"])
    assert summary["best_epoch"] == best["epoch"]
    assert summary["best_val"]["age_mae"] == best["val/age_mae"]
    assert summary["final_val"] == {k[4:]: v for k, v in records[-1].items() if k.startswith("val/")}
    assert summary["num_devices"] == jax.local_device_count() == 2
    assert summary["device_kind"] == jax.local_devices()[0].device_kind
    provenance = summary["provenance"]
    # The commit the run started from (outside a git checkout both sides read 'unknown').
    assert provenance["git_commit"].removesuffix("-dirty") == git_commit().removesuffix("-dirty")
    assert provenance["data_sha256"] == archive.data_checksum(root / "UTKFace")
    assert provenance["device"]["num_devices"] == 2
    assert summary["split_sha256"] == archive.sha256_file(root / "splits" / "utkface.csv")
    for name in ("last", "best"):
        assert checkpoints.latest_step(tiny_run / "checkpoints" / name) is not None


class Interrupted(Exception):
    """Stands in for a run killed right after a checkpoint."""


def test_resumed_run_matches_uninterrupted_run(tiny_run, tmp_path, monkeypatch, capsys, utk_writer):
    config = smoke_config(tiny_run.parent, utk_writer)
    save = checkpoints.save

    def save_then_stop(directory, step, state, meta):
        save(directory, step, state, meta)
        if Path(directory).name == "last":
            raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(checkpoints, "save", save_then_stop)
        with pytest.raises(Interrupted):
            train_and_evaluate(config, tmp_path / "run")
    assert len(read_jsonl(tmp_path / "run" / "metrics.jsonl")) == 1
    assert not (tmp_path / "run" / "summary.json").exists()

    summary = train_and_evaluate(config, tmp_path / "run")
    assert "resuming cnn_baseline after epoch 1" in capsys.readouterr().out
    assert without_timing(read_jsonl(tmp_path / "run" / "metrics.jsonl")) == without_timing(
        read_jsonl(tiny_run / "metrics.jsonl"))
    uninterrupted = json.loads((tiny_run / "summary.json").read_text())
    assert summary["final_val"] == uninterrupted["final_val"]
    assert summary["best_epoch"] == uninterrupted["best_epoch"]
    target = create_train_state(create_model(config.model), config, jax.random.key(0), 2)
    resumed, _ = checkpoints.restore(tmp_path / "run" / "checkpoints" / "last", target)
    straight, _ = checkpoints.restore(tiny_run / "checkpoints" / "last", target)
    assert int(resumed.step) == int(straight.step) == 4
    for part in ("params", "batch_stats", "opt_state"):
        tree_equal(getattr(resumed, part), getattr(straight, part))


def test_non_finite_loss_stops_the_run_with_a_clear_message(tiny_run, tmp_path, utk_writer):
    # A huge learning rate sends the weights to ~1e30 after the second step; the next loss is not finite.
    # On 1 of the 2 devices, which also covers taking the state off a 1-device pmap for validation.
    config = smoke_config(tiny_run.parent, utk_writer, {"optimizer.learning_rate": 1e30,
                                                        "optimizer.warmup_epochs": 0.0, "num_devices": 1})
    with pytest.raises(NonFiniteLossError, match=r"cnn_baseline: the training loss became (nan|-?inf) in "
                                                 r"epoch 2 .*lower optimizer\.learning_rate"):
        train_and_evaluate(config, tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_fewer_training_images_than_a_batch_is_an_error(tiny_run, tmp_path, utk_writer):
    config = smoke_config(tiny_run.parent, utk_writer, {"data.max_train_images": 8})
    with pytest.raises(ValueError, match="8 training images is fewer than one batch of 16"):
        train_and_evaluate(config, tmp_path / "run")


# --- configs -------------------------------------------------------------------------------------

def test_overrides_parse_values_and_leave_the_original_alone():
    base = load_config("cnn_baseline", "smoke")
    config = apply_overrides(base, ["optimizer.num_epochs=3", "model.widths=(8,16)", "optimizer.name=sgd",
                                    "optimizer.learning_rate=1e-3", "augment.flip=False",
                                    "loss.weights.race=0"])
    assert config.optimizer.num_epochs == 3 and type(config.optimizer.num_epochs) is int
    assert config.model.widths == (8, 16) and isinstance(config.model.widths, tuple)
    assert config.optimizer.name == "sgd" and config.optimizer.learning_rate == 1e-3
    assert config.augment.flip is False and config.loss.weights.race == 0
    assert base.optimizer.num_epochs == 2 and base.optimizer.name == "adamw"
    assert apply_overrides(base, {"seed": 7, "model.widths": (4,)}).model.widths == (4,)
    assert parse_value("3") == 3 and type(parse_value("3")) is int
    assert parse_value("(8,16)") == (8, 16) and parse_value("text") == "text"
    assert parse_value("2.5") == 2.5 and parse_value("None") is None


@pytest.mark.parametrize("override", ["optimizer.nope=1", "nope=1", "nope.deeper=1", "model.widths.x=1"])
def test_unknown_override_key_is_a_config_error(override):
    with pytest.raises(ConfigError, match="unknown config key"):
        apply_overrides(load_config("cnn_baseline", "smoke"), [override])


def test_malformed_overrides_and_configs_are_errors():
    config = load_config("cnn_baseline", "smoke")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(config, ["optimizer.num_epochs"])
    with pytest.raises(ConfigError, match="optimizer.num_epochs='three'"):
        apply_overrides(config, ["optimizer.num_epochs=three"])
    with pytest.raises(ValueError, match="no experiment config named"):
        load_config("no_such_experiment", "smoke")
    with pytest.raises(ValueError, match="unknown profile .tpu.; profiles: smoke, cpu, gpu"):
        load_config("cnn_baseline", "tpu")


def test_resume_refuses_a_checkpoint_made_under_another_config(tmp_path):
    from research.training.loop import check_resumable, training_config

    config = load_config("cnn_baseline", "smoke")
    meta = {"config": json.loads(json.dumps(training_config(config)))}
    check_resumable(meta, config, tmp_path)  # same config: fine
    moved = apply_overrides(config, {"data.cache_root": str(tmp_path / "elsewhere")})
    check_resumable(meta, moved, tmp_path)  # where the data lives does not matter
    longer = apply_overrides(config, {"optimizer.num_epochs": 5})
    with pytest.raises(ValueError, match="optimizer"):
        check_resumable(meta, longer, tmp_path)


def write_single_release(folder: Path, config, variables) -> Path:
    """A one-run release folder as export writes one (params, config.json, metadata's checksum)."""
    folder.mkdir(parents=True, exist_ok=True)
    blob = params_bytes(jax.device_get(variables))
    (folder / "params.msgpack").write_bytes(blob)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    (folder / "metadata.json").write_text(json.dumps({"params_sha256": hashlib.sha256(blob).hexdigest()}))
    return folder


def test_init_from_a_release_starts_from_its_weights(tmp_path, step_config, initial_state):
    """Continued training (``model.init_from``): every param and statistic is the release's, not
    a fresh draw; a release of another shape, an ensemble or a corrupt file is refused by name."""
    trained = jax.tree_util.tree_map(lambda x: x + 0.5, {"params": initial_state.params,
                                                          "batch_stats": initial_state.batch_stats})
    release = write_single_release(tmp_path / "release", step_config, trained)
    config = ml_collections.ConfigDict(step_config.to_dict())
    config.model.init_from = str(release)
    state = create_train_state(create_model(config.model), config, jax.random.key(9), 30)
    tree_equal(state.params, trained["params"])
    tree_equal(state.batch_stats, trained["batch_stats"])
    with pytest.raises(AssertionError):  # without it, the same seed draws other weights
        tree_equal(create_train_state(create_model(step_config.model), step_config,
                                      jax.random.key(9), 30).params, trained["params"])

    other = ml_collections.ConfigDict(config.to_dict())
    other.model.widths = tuple(2 * w for w in other.model.widths)
    with pytest.raises(ValueError, match="do not fit this model"):
        create_train_state(create_model(other.model), other, jax.random.key(9), 30)
    ensemble = ml_collections.ConfigDict(config.to_dict())
    ensemble.model.init_from = str(write_tiny_release(tmp_path / "ensemble"))
    with pytest.raises(ValueError, match="ensemble of 2 runs"):
        create_train_state(create_model(ensemble.model), ensemble, jax.random.key(9), 30)
    (release / "params.msgpack").write_bytes(b"not the release")
    with pytest.raises(ValueError, match="init_from.*sha256"):
        create_train_state(create_model(config.model), config, jax.random.key(9), 30)
