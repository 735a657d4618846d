"""Losses: the age read-out, age targets, and the masking and weighting of the multi-task loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.configs import load_config
from research.configs.overrides import apply_overrides
from research.models.heads import NUM_AGE_BINS
from research.training.losses import (
    age_loss,
    age_targets,
    classification_loss,
    expected_age,
    multitask_loss,
    predicted_age,
)

NEG = -1e9  # a logit whose probability is 0 in float32


def loss_config(**overrides):
    return apply_overrides(load_config("cnn_baseline", "smoke"), overrides).loss


def logits_with_probs(probs: dict[int, float]) -> jnp.ndarray:
    logits = np.full(NUM_AGE_BINS, NEG, np.float32)
    for age, p in probs.items():
        logits[age] = np.log(p)
    return jnp.asarray(logits)


def test_expected_age_by_hand():
    logits = jnp.stack([logits_with_probs({20: 0.5, 30: 0.5}), logits_with_probs({10: 0.2, 40: 0.8}),
                        logits_with_probs({0: 1.0}), logits_with_probs({116: 1.0})])
    mean, std = expected_age(logits)
    # 0.2 * 10 + 0.8 * 40 = 34;  var = 0.2 * 100 + 0.8 * 1600 - 34^2 = 144
    np.testing.assert_allclose(mean, [25.0, 34.0, 0.0, 116.0], atol=1e-4)
    np.testing.assert_allclose(std, [5.0, 12.0, 0.0, 0.0], atol=1e-2)


def test_expected_age_of_uniform_logits_is_the_middle_age():
    mean, std = expected_age(jnp.zeros((1, NUM_AGE_BINS)))
    np.testing.assert_allclose(mean, [58.0], rtol=1e-6)  # mean of 0..116
    np.testing.assert_allclose(std, [np.std(np.arange(NUM_AGE_BINS))], rtol=1e-4)


def test_predicted_age_reads_both_heads():
    np.testing.assert_allclose(predicted_age(logits_with_probs({20: 0.5, 30: 0.5})[None]), [25.0], atol=1e-4)
    regressed = jnp.array([3.5, 70.25])
    np.testing.assert_array_equal(predicted_age(regressed), regressed)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 5.0])
def test_ldl_targets_are_distributions_peaking_at_the_true_age(sigma):
    ages = jnp.array([0, 1, 25, 60, 115, 116])
    targets = np.asarray(age_targets(ages, "ldl", sigma))
    assert targets.shape == (len(ages), NUM_AGE_BINS)
    assert (targets >= 0).all()
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(targets.argmax(axis=1), ages)
    # Symmetric about an interior age: p(age - d) == p(age + d).
    row = targets[2]
    np.testing.assert_allclose(row[25 - 3], row[25 + 3], rtol=1e-6)
    assert row[25] > row[26] > row[28]


def test_ce_targets_are_one_hot_and_wrong_head_loss_pairs_fail():
    targets = np.asarray(age_targets(jnp.array([3, 90]), "ce", 2.0))
    np.testing.assert_array_equal(targets.argmax(1), [3, 90])
    np.testing.assert_array_equal(targets.sum(1), [1.0, 1.0])
    assert targets.max() == 1.0
    with pytest.raises(ValueError, match="classification head"):
        age_targets(jnp.array([3]), "l1", 2.0)
    with pytest.raises(ValueError, match="regression head"):
        age_loss(jnp.array([30.0]), jnp.array([31]), "ldl", 2.0)


def test_regression_age_losses_by_hand():
    pred, age = jnp.array([30.0, 20.0]), jnp.array([33, 15])
    np.testing.assert_allclose(age_loss(pred, age, "l1", 2.0), [3.0, 5.0])
    np.testing.assert_allclose(age_loss(pred, age, "l2", 2.0), [0.09, 0.25], rtol=1e-6)


def test_missing_labels_are_masked_out_of_classification_loss():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    terms, valid = classification_loss(logits, jnp.array([0, -1, 1]), smoothing=0.0)
    np.testing.assert_array_equal(valid, [1.0, 0.0, 1.0])
    expected = [np.log1p(np.exp(-2.0)), 10 + np.log1p(np.exp(-10.0))]
    np.testing.assert_allclose(np.asarray(terms)[[0, 2]], expected, rtol=1e-5)


def random_batch(n: int, seed: int, age_head: str = "classification") -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    age_out = rng.normal(size=(n, NUM_AGE_BINS)) if age_head == "classification" else rng.uniform(1, 80, n)
    outputs = {"age": jnp.asarray(age_out, jnp.float32),
               "gender": jnp.asarray(rng.normal(size=(n, 2)), jnp.float32),
               "race": jnp.asarray(rng.normal(size=(n, 5)), jnp.float32)}
    batch = {"age": rng.integers(1, 90, n).astype(np.int32), "gender": rng.integers(0, 2, n).astype(np.int32),
             "race": rng.integers(0, 5, n).astype(np.int32), "weight": np.ones(n, np.float32)}
    return outputs, batch


def take(tree: dict, rows) -> dict:
    return {k: v[rows] for k, v in tree.items()}


def test_rows_without_ethnicity_count_for_age_and_gender_only():
    cfg = loss_config()
    outputs, batch = random_batch(10, seed=0)
    missing = np.array([1, 4, 5])
    batch["race"][missing] = -1
    known = np.setdiff1d(np.arange(10), missing)
    _, losses = multitask_loss(outputs, batch, cfg)
    _, known_only = multitask_loss(take(outputs, known), take(batch, known), cfg)
    np.testing.assert_allclose(losses["race"], known_only["race"], rtol=1e-6)
    # Age and gender still average over all 10 rows, which differs from the 7 known ones.
    _, full = multitask_loss(outputs, {**batch, "race": np.zeros(10, np.int32)}, cfg)
    np.testing.assert_allclose(losses["age"], full["age"], rtol=1e-6)
    np.testing.assert_allclose(losses["gender"], full["gender"], rtol=1e-6)
    assert not np.isclose(losses["age"], known_only["age"])


@pytest.mark.parametrize("age_head, age_loss_name", [("classification", "ldl"), ("classification", "ce"),
                                                     ("regression", "l1")])
def test_padding_rows_do_not_change_the_loss(age_head, age_loss_name):
    cfg = loss_config(**{"loss.age_loss": age_loss_name})
    outputs, batch = random_batch(6, seed=1, age_head=age_head)
    padded_out, padded = random_batch(9, seed=2, age_head=age_head)
    padded_out = {k: jnp.concatenate([outputs[k], padded_out[k][6:]]) for k in outputs}
    padded = {k: np.concatenate([batch[k], padded[k][6:]]) for k in batch}
    padded["weight"][6:] = 0.0
    padded["race"][7] = -1
    total, losses = multitask_loss(outputs, batch, cfg)
    padded_total, padded_losses = multitask_loss(padded_out, padded, cfg)
    np.testing.assert_allclose(padded_total, total, rtol=1e-6)
    for head in ("age", "gender", "race"):
        np.testing.assert_allclose(padded_losses[head], losses[head], rtol=1e-6)
    # ... whereas the same rows with weight 1 do change it.
    counted_total, _ = multitask_loss(padded_out, {**padded, "weight": np.ones(9, np.float32)}, cfg)
    assert not np.isclose(counted_total, total)


def test_total_is_the_weighted_sum_of_head_losses():
    cfg = loss_config(**{"loss.weights.age": 0.5, "loss.weights.gender": 2.0, "loss.weights.race": 0.25})
    outputs, batch = random_batch(5, seed=3)
    total, losses = multitask_loss(outputs, batch, cfg)
    np.testing.assert_allclose(total, 0.5 * losses["age"] + 2.0 * losses["gender"] + 0.25 * losses["race"],
                               rtol=1e-6)


@pytest.mark.parametrize("head", ["age", "gender", "race"])
def test_zero_loss_weight_removes_a_head_from_the_gradients(head):
    cfg = loss_config(**{f"loss.weights.{head}": 0.0})
    outputs, batch = random_batch(8, seed=4)

    def grads(batch):
        return jax.grad(lambda out: multitask_loss(out, batch, cfg)[0])(outputs)

    g = grads(batch)
    np.testing.assert_array_equal(g[head], 0.0)
    for other in {"age", "gender", "race"} - {head}:
        assert float(jnp.abs(g[other]).max()) > 0
    # Changing that head's labels changes nothing in any gradient.
    relabelled = dict(batch)
    relabelled[head] = (batch[head] + 1) % {"age": 90, "gender": 2, "race": 5}[head]
    jax.tree_util.tree_map(np.testing.assert_array_equal, grads(relabelled), g)
    # With weight 1 the head does receive gradient.
    g_on = jax.grad(lambda out: multitask_loss(out, batch, loss_config())[0])(outputs)
    assert float(jnp.abs(g_on[head]).max()) > 0
