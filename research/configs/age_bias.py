"""Settings of the release's age-bias correction (scripts/age_bias.py -> results/bias/).

    python scripts/age_bias.py           # a few minutes: it reads the release's distributions only

Two corrections of the release's age distribution are fitted (research.evaluation.age_bias): the
label prior (the distribution divided by the training split's age histogram to the power tau) and
the de-shrinking map (the estimate moved by lambda towards the inverse of E[estimate | true age]
fitted on validation, the distribution translated with it). Chosen from data, on the validation
split only: tau of ``taus`` and lambda of ``lambdas``, each the value whose largest |mean signed
error| over the age groups is smallest while the overall validation MAE rises by at most
``max_mae_increase`` years over the uncorrected model, then the method by the same criterion. The
test split is scored once with the choice. ``arg="smoke"`` shrinks the bootstrap for tests.
"""

import ml_collections

from research.configs.experiments import EVALUATION
from research.vocabulary import CHALLENGE_AGE


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.split_file = "results/splits/utkface.csv"  # the training split's ages make the prior
    # The prior: training-split counts per age 0..116, smoothed with a Gaussian kernel of this sd
    # (years; about the label noise of annotated ages) plus a pseudo-count per age, so that no age
    # has zero prior mass (dividing by it would put mass on ages never seen).
    c.prior_smoothing_sd = 2.0
    c.prior_pseudo_count = 1.0
    c.taus = tuple(round(0.05 * k, 2) for k in range(41))  # 0 .. 2: tau = 1 is a flat age prior
    c.lambdas = tuple(round(0.05 * k, 2) for k in range(21))  # 0 .. 1: lambda = 1 is the full inverse
    c.max_mae_increase = 0.25  # years of overall validation MAE the correction may cost
    # The alternatives fitted on validation (monotone maps of the estimate) are scored on validation
    # out of fold, so that they are not judged on the faces they were fitted to.
    c.folds = 5
    c.challenge = CHALLENGE_AGE  # the estimate-alone Challenge-N rates of the table
    c.resamples = EVALUATION.smoke_resamples if arg == "smoke" else EVALUATION.resamples
    c.seed = EVALUATION.seed
    c.level = EVALUATION.level
    c.min_faces_per_age = 10  # the per-age figure shows ages with at least this many faces
    return c
