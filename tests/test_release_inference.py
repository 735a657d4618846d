"""How the release runs (research.release.inference): the mirror-averaging choice against the bar,
inference.json applied by load_release (and refused for other params), the committed choice."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _synthetic_release import write_tiny_release

from research.configs.experiments import ACCURACY_BAR_RELEASE, RELEASE_DIR
from research.predict.release import INFERENCE_FILE, ReleaseError, load_release
from research.release import inference
from research.release.model_card import inference_line

ROOT = Path(__file__).resolve().parents[1]
BAR = {"release": "bar", "age_mae": 5.0, "gender_acc": 0.93}


def views(mae: float, gender: float) -> dict:
    return {"age_mae": mae, "gender_acc": gender, "race_acc": 0.8, "images": 10, "forward_seconds": 1.0}


def test_the_mirror_stays_off_when_one_view_keeps_the_bar():
    flip, reason = inference.choose_flip(views(4.6, 0.95), views(4.7, 0.94), BAR)
    assert flip is False and "+0.100 years" in reason


@pytest.mark.parametrize("one_view", [views(5.1, 0.95), views(4.7, 0.92)])
def test_the_mirror_stays_on_when_one_view_misses_the_bar(one_view):
    flip, reason = inference.choose_flip(views(4.6, 0.95), one_view, BAR)
    assert flip is True and "misses" in reason


def test_bar_metrics_from_predictions():
    frame = pd.DataFrame({"age": [10, 20, 30], "pred_age": [12.0, 20.0, 27.0], "gender": [0, 1, 1],
                          "pred_gender": [0, 1, 0]})
    bar = inference.bar_metrics(frame)
    assert bar["age_mae"] == pytest.approx(5 / 3) and bar["gender_acc"] == pytest.approx(2 / 3)


def write_inference(folder: Path, flip, sha: str | None = None) -> None:
    sha = sha or json.loads((folder / "metadata.json").read_text())["params_sha256"]
    (folder / INFERENCE_FILE).write_text(json.dumps({"tta_flip": flip, "release": {"params_sha256": sha}}))


def test_load_release_applies_inference_json(tmp_path):
    folder = write_tiny_release(tmp_path / "release")
    trained = bool(load_release(folder).config.eval.tta_flip)
    write_inference(folder, not trained)
    release = load_release(folder)
    assert bool(release.config.eval.tta_flip) is (not trained)
    assert release.inference["tta_flip"] is (not trained)


def test_load_release_refuses_inference_json_of_other_params_or_values(tmp_path):
    folder = write_tiny_release(tmp_path / "release")
    write_inference(folder, False, sha="0" * 64)
    with pytest.raises(ReleaseError, match="release_inference.py"):
        load_release(folder)
    write_inference(folder, "no")
    with pytest.raises(ReleaseError, match="true or false"):
        load_release(folder)


def test_view_metrics_score_the_release_both_ways(tmp_path):
    release = load_release(write_tiny_release(tmp_path / "release"))
    size = int(release.config.image_size)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, size, size, 3), dtype=np.uint8)
    symmetric = np.concatenate([images[:, :, : size // 2], images[:, :, : size // 2][:, :, ::-1]], axis=2)
    table = pd.DataFrame({"age": [1, 20, 40, 60, 80], "gender": [0, 1, 0, 1, 0], "race": [0, 1, 2, 3, 4]})
    mirrored, one = (inference.view_metrics(release, images, table, flip, 4) for flip in (True, False))
    assert mirrored["images"] == one["images"] == 5
    assert mirrored["age_mae"] != pytest.approx(one["age_mae"], abs=1e-6)
    # A face equal to its mirror image scores the same both ways.
    sym_mirrored, sym_one = (inference.view_metrics(release, symmetric, table, flip, 4)
                             for flip in (True, False))
    assert sym_mirrored["age_mae"] == pytest.approx(sym_one["age_mae"], abs=1e-4)


def test_the_committed_choice_follows_from_its_measurements():
    path = ROOT / RELEASE_DIR / INFERENCE_FILE
    if not path.is_file():
        pytest.skip("the release carries no inference.json")
    chosen = json.loads(path.read_text())
    measured = chosen["measured"]
    assert chosen["bar"]["release"] == ACCURACY_BAR_RELEASE
    flip, _ = inference.choose_flip(measured["with_flip"], measured["without_flip"], chosen["bar"])
    assert chosen["tta_flip"] is flip
    assert load_release(ROOT / RELEASE_DIR).config.eval.tta_flip is flip


def test_the_card_says_how_the_command_runs_and_what_ran_otherwise():
    chosen = {"tta_flip": False, "bar": BAR, "measured": {"with_flip": views(4.6, 0.95),
                                                          "without_flip": views(4.7, 0.94)}}
    line = inference_line(chosen, trained_flip=True)[0]
    assert "one view" in line and "4.70" in line and "source run's" in line
    assert "source run's" not in inference_line({**chosen, "tta_flip": True}, trained_flip=True)[0]
    assert inference_line(None, True) == []
