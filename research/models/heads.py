"""The three task heads shared by every backbone."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from research.vocabulary import NUM_ETHNICITIES, NUM_GENDERS

NUM_AGE_BINS = 117  # ages 0..116
# numpy, not jnp: a module-level JAX array would start the backend at import, before a multi-process
# run could call jax.distributed.initialize.
AGES = np.arange(NUM_AGE_BINS, dtype=np.float32)


def expected_age(logits: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Mean and standard deviation of the predicted distribution over ages 0..116."""
    probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
    mean = probs @ AGES
    var = probs @ AGES**2 - mean**2
    return mean, jnp.sqrt(jnp.maximum(var, 0.0))


def predicted_age(age_output: jnp.ndarray) -> jnp.ndarray:
    """Point estimate from either age head (expected value for the classification head)."""
    return expected_age(age_output)[0] if age_output.ndim == 2 else age_output.astype(jnp.float32)


class MultiTaskHeads(nn.Module):
    """Age (a scalar, or logits over ages 0..116), gender logits (2) and ethnicity logits (5)."""

    age_head: str = "classification"  # or "regression"
    dropout: float = 0.0
    # A regression head predicts (age - offset) / scale so that its targets start near 0 +- 1.
    age_offset: float = 33.0
    age_scale: float = 20.0

    @nn.compact
    def __call__(self, features: jnp.ndarray, train: bool) -> dict[str, jnp.ndarray]:
        x = nn.Dropout(self.dropout, deterministic=not train)(features.astype(jnp.float32))
        if self.age_head == "classification":
            age = nn.Dense(NUM_AGE_BINS, name="age")(x)
        elif self.age_head == "regression":
            age = nn.Dense(1, name="age")(x)[:, 0] * self.age_scale + self.age_offset
        else:
            raise ValueError(f"age_head must be 'classification' or 'regression', got {self.age_head!r}")
        return {"age": age, "gender": nn.Dense(NUM_GENDERS, name="gender")(x),
                "race": nn.Dense(NUM_ETHNICITIES, name="race")(x)}
