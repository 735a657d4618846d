"""Confirmed non-faces: left out of training and validation only when the config asks, never out of
test (research/data/nonfaces.py, the training loop), and the test metrics with and without them
(research/evaluation/nonfaces.py)."""

import json

import numpy as np
import pandas as pd
import pytest

from research.configs import load_config, load_run_config
from research.configs.experiments import PENDING_RUNS, RUNS
from research.configs.nonfaces import NONFACES
from research.configs.overrides import apply_overrides
from research.data import nonfaces
from research.data.cache import DecodedImages
from research.evaluation.nonfaces import FULL, WITHOUT, scan_counts, with_and_without, write_nonface_metrics
from research.training import loop

LISTED = {"train_b.jpg", "val_a.jpg", "test_a.jpg"}


def cache_of(splits: dict[str, list[str]]) -> DecodedImages:
    files = [(f, s) for s, names in splits.items() for f in names]
    table = pd.DataFrame({"file": [f for f, _ in files], "split": [s for _, s in files],
                          "age": 30, "gender": 0, "race": 0})
    return DecodedImages(images=np.arange(len(table))[:, None], table=table)


@pytest.fixture
def cached():
    return cache_of({"train": ["train_a.jpg", "train_b.jpg", "train_c.jpg"],
                     "val": ["val_a.jpg", "val_b.jpg"],
                     "test": ["test_a.jpg", "test_b.jpg"]})


def test_exclusion_drops_exactly_the_listed_files_from_train_and_val(cached):
    rows, table = nonfaces.training_split(cached, "train", True, LISTED)
    assert list(table["file"]) == ["train_a.jpg", "train_c.jpg"]
    assert list(cached.images[rows, 0]) == [0, 2]  # rows still index the cached images
    rows, table = nonfaces.training_split(cached, "val", True, LISTED)
    assert list(table["file"]) == ["val_b.jpg"] and list(rows) == [4]
    for split in ("train", "val"):  # off: everything, as every committed run trained
        _, table = nonfaces.training_split(cached, split, False, LISTED)
        assert list(table["file"]) == list(cached.split(split)[1]["file"])


def test_the_test_split_is_never_filtered(cached):
    with pytest.raises(ValueError, match="test split is scored with and without"):
        nonfaces.training_split(cached, "test", True, LISTED)
    assert "test_a.jpg" in set(cached.split("test")[1]["file"])  # what predictions read


def test_the_key_is_off_by_default_and_on_only_where_a_run_says_so():
    assert load_config("cnn_baseline", "cpu").data.exclude_nonfaces is False
    for name in RUNS:
        if name not in PENDING_RUNS:
            said = dict(RUNS[name].overrides).get("data.exclude_nonfaces", False)
            assert load_run_config(name).data.exclude_nonfaces is said, name
    assert any(dict(r.overrides).get("data.exclude_nonfaces") for r in RUNS.values())


def test_the_training_loop_leaves_out_the_listed_files_when_the_key_is_on(tmp_path, monkeypatch, cached):
    seen = {}

    class Stop(Exception):
        pass

    real_split = nonfaces.training_split

    def recording_split(cache, split, exclude, names=None):
        rows, table = real_split(cache, split, exclude, names)
        seen[split] = list(table["file"])
        return rows, table

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(loop.protocol, "open_protocol", lambda config, data=None: cached)
    monkeypatch.setattr(nonfaces, "training_split", recording_split)
    monkeypatch.setattr(nonfaces, "confirmed_nonfaces", lambda: frozenset(LISTED))  # the list's stand-in
    monkeypatch.setattr(loop, "create_model", stop)
    config = apply_overrides(load_config("cnn_baseline", "smoke"), {"batch_size": 2, "num_devices": 1})
    for exclude, train, val in ((False, 3, 2), (True, 2, 1)):
        config.data.exclude_nonfaces = exclude
        with pytest.raises(Stop):
            loop.train_and_evaluate(config, tmp_path / f"run_{exclude}")
        assert (len(seen["train"]), len(seen["val"])) == (train, val)
        assert set(seen) == {"train", "val"}  # the loop never asks for test
    assert not LISTED & set(seen["train"] + seen["val"])


def test_a_checkpoint_resumes_only_under_the_same_exclusion(tmp_path):
    config = load_config("cnn_baseline", "smoke")
    before = {"config": json.loads(json.dumps(loop.training_config(config)))}  # made before the key
    loop.check_resumable(before, config, tmp_path)
    excluding = apply_overrides(config, {"data.exclude_nonfaces": True})
    with pytest.raises(ValueError, match="exclude_nonfaces"):
        loop.check_resumable(before, excluding, tmp_path)
    made_excluding = {"config": json.loads(json.dumps(loop.training_config(excluding)))}
    loop.check_resumable(made_excluding, excluding, tmp_path)
    with pytest.raises(ValueError, match="exclude_nonfaces"):
        loop.check_resumable(made_excluding, config, tmp_path)


def predictions(rows: list[tuple]) -> pd.DataFrame:
    columns = ["file", "age", "pred_age", "gender", "pred_gender", "race", "pred_race"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(p_female=frame["pred_gender"].astype(float))


def test_metrics_with_and_without_match_hand_computed_values():
    frame = predictions([("a.jpg", 1, 30.0, 0, 1, 0, 2),     # the listed non-face: 29 years off, all wrong
                         ("b.jpg", 15, 26.0, 1, 1, 1, 1),    # a 15-year-old estimated 26: let through at 25
                         ("c.jpg", 16, 20.0, 0, 0, 2, 2),
                         ("d.jpg", 40, 38.0, 1, 1, -1, 3)])  # race missing: not in the ethnicity accuracy
    full, without = with_and_without(frame, {"a.jpg", "not_in_test.jpg"})
    assert (full["test_set"], full["images"], full["nonfaces_dropped"]) == (FULL, 4, 0)
    assert full["age_mae"] == pytest.approx((29 + 11 + 4 + 2) / 4)
    assert full["age_mean_signed_error"] == pytest.approx((29 + 11 + 4 - 2) / 4)
    assert full["gender_accuracy"] == pytest.approx(3 / 4)
    assert full["ethnicity_accuracy"] == pytest.approx(2 / 3)
    assert full["challenge25_fpr_13_17"] == pytest.approx(1 / 2)
    assert (without["test_set"], without["images"], without["nonfaces_dropped"]) == (WITHOUT, 3, 1)
    assert without["age_mae"] == pytest.approx((11 + 4 + 2) / 3)
    assert without["gender_accuracy"] == 1.0 and without["ethnicity_accuracy"] == 1.0
    assert without["challenge25_fpr_13_17"] == pytest.approx(1 / 2)


def test_the_metrics_stage_counts_per_split_and_refuses_a_file_that_is_no_crop(tmp_path):
    scan = pd.DataFrame({"file": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
                         "split": ["test", "test", "train", "train"],
                         "found_by": ["none", "no_upsampling", "none", "none"]})
    counts = scan_counts(scan, {"a.jpg", "b.jpg", "c.jpg"})
    keys = ("crops", "no_face_found", "confirmed_nonfaces", "confirmed_but_face_found")
    assert counts["test"] == dict(zip(keys, (2, 1, 2, 1), strict=True))
    assert counts["train"] == dict(zip(keys, (2, 2, 1, 0), strict=True))
    scan.to_csv(tmp_path / "face_scan.csv", index=False)
    run = tmp_path / "runs" / "model"
    run.mkdir(parents=True)
    frame = predictions([("a.jpg", 1, 30.0, 0, 1, 0, 2), ("b.jpg", 15, 26.0, 1, 1, 1, 1)])
    frame = frame.assign(age_std=1.0, **{f"p_race{i}": 0.2 for i in range(5)})
    frame.to_csv(run / "predictions_test.csv", index=False)
    summary = write_nonface_metrics(["model", "not_trained"], tmp_path / "runs", tmp_path / "face_scan.csv",
                                    {"a.jpg": "an eye"}, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "nonfaces_test_metrics.csv")
    assert list(table["run"]) == ["model", "model"] and list(table["images"]) == [2, 1]
    assert summary["confirmed_nonfaces"] == 1 and len(summary["metrics"]) == 2
    assert summary["reasons"] == {"an eye": 1}
    with pytest.raises(ValueError, match="not cleaned crops"):
        write_nonface_metrics(["model"], tmp_path / "runs", tmp_path / "face_scan.csv",
                              {"z.jpg": "?"}, tmp_path / "out")


def test_every_listed_nonface_has_a_reason_and_a_utkface_name():
    for file, reason in NONFACES.items():
        assert file.endswith(".jpg.chip.jpg") and reason.strip(), file
