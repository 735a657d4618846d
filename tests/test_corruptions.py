"""The corruption benchmark: each corruption (research.data.corruptions) on synthetic crops, and the
benchmark (research.evaluation.robustness) on the tiny synthetic folder with a stub model and with
a tiny release, end to end through scripts/corruption_benchmark.py."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _synthetic_release import write_tiny_release
from conftest import synthetic_pixels

from research.data import corruptions
from research.data.corruptions import CLEAN, CORRUPTIONS, corrupt, model_input
from research.evaluation import metrics, robustness
from research.inference import mixture_step
from research.predict.release import load_release
from research.vocabulary import AGE_GROUPS, age_group

REPO = Path(__file__).resolve().parents[1]
RANDOM = ("colour_cast", "noise", "brightness", "gamma", "rotation")
FIXED = tuple(name for name in CORRUPTIONS if name not in RANDOM)


@pytest.fixture(scope="module")
def crops() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [synthetic_pixels(rng) for _ in range(4)]


def mean_abs_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def high_frequency_energy(image: np.ndarray) -> float:
    """Spectral energy of the luma above a third of the Nyquist frequency (Hann-windowed, so that the
    image's borders do not count as edges)."""
    luma = image.astype(float) @ corruptions.LUMA
    h, w = luma.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2((luma - luma.mean()) * window))) ** 2
    fy, fx = np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(n)) for n in (h, w)), indexing="ij")
    return float(spectrum[np.hypot(fy, fx) > 0.5 / 3].sum())


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_keeps_shape_and_dtype_and_changes_the_image(name, crops):
    tall = crops[0][:, :160]
    for severity in (1, 2, 3):
        for image in (crops[0], tall):
            out = corrupt(image, name, severity, 0, "a.jpg")
            assert out.shape == image.shape and out.dtype == np.uint8
            assert mean_abs_change(out, image) > 0.5


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corruption_is_deterministic_for_a_seed(name, crops):
    first = corrupt(crops[1], name, 2, 7, "face.jpg")
    np.testing.assert_array_equal(first, corrupt(crops[1], name, 2, 7, "face.jpg"))
    others = [corrupt(crops[1], name, 2, seed, "face.jpg") for seed in range(8)]
    differ = any(not np.array_equal(first, other) for other in others)
    assert differ == (name in RANDOM)  # random ones differ across seeds, the rest ignore the seed


def test_each_image_has_its_own_draw_whatever_the_order(crops):
    stack, files = np.stack(crops), pd.Series([f"{i}.jpg" for i in range(len(crops))])
    order = np.array([2, 0, 3, 1])
    forward = robustness.corrupted(stack, files, "noise", 2, 5)
    shuffled = robustness.corrupted(stack[order], files[order].reset_index(drop=True), "noise", 2, 5)
    np.testing.assert_array_equal(shuffled, forward[order])
    assert not np.array_equal(forward[0], corrupt(crops[0], "noise", 2, 5, "1.jpg"))  # the name seeds it


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_each_severity_changes_the_image_more(name, crops):
    for i, image in enumerate(crops):
        change = [mean_abs_change(corrupt(image, name, s, 1, f"{i}.jpg"), image) for s in (1, 2, 3)]
        assert change[0] < change[1] < change[2], (name, change)


def test_full_grayscale_has_equal_channels_and_milder_ones_keep_colour(crops):
    gray = corrupt(crops[0], "grayscale", 3, 0, "a")
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    expected = np.clip(np.round(crops[0].astype(float) @ corruptions.LUMA), 0, 255)
    np.testing.assert_array_equal(gray[..., 0], expected)
    for severity in (1, 2):
        partial = corrupt(crops[0], "grayscale", severity, 0, "a").astype(int)
        assert np.abs(partial[..., 0] - partial[..., 2]).max() > 5


@pytest.mark.parametrize("name", ["low_resolution", "blur"])
def test_downscaling_and_blur_remove_high_frequencies(name, crops):
    original = high_frequency_energy(crops[0])
    energy = [high_frequency_energy(corrupt(crops[0], name, s, 0, "a")) for s in (1, 2, 3)]
    assert energy[0] < 0.5 * original and energy[0] > energy[1] > energy[2]


def test_low_resolution_is_a_downscale_to_its_side(crops):
    out = corrupt(crops[0], "low_resolution", 3, 0, "a")
    side = int(corruptions.SEVERITIES["low_resolution"][2])
    assert side == 24
    # Downscaled again to 24 px, it is (up to rounding) what the 24 px image was: no detail beyond.
    small = model_input(crops[0], side).astype(float)
    assert np.abs(model_input(out, side).astype(float) - small).mean() < 3


def test_unknown_names_severities_and_inputs_are_errors(crops):
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt(crops[0], "fog", 1, 0, "a")
    with pytest.raises(ValueError, match="severity"):
        corrupt(crops[0], "blur", 4, 0, "a")
    with pytest.raises(ValueError, match="uint8"):
        corrupt(crops[0].astype(np.float32), "blur", 1, 0, "a")


# ---- the subset and the table ---------------------------------------------------------------

def labelled(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ages = rng.integers(1, 90, n)
    return pd.DataFrame({"file": [f"{i}_{a}.jpg" for i, a in enumerate(ages)], "age": ages,
                         "gender": rng.integers(0, 2, n), "race": rng.integers(0, 5, n)})


def test_the_subset_is_stratified_seeded_and_in_table_order():
    table = labelled(2000)
    subset = robustness.stratified_subset(table, 300, 0)
    assert len(subset) == 300 and subset["file"].is_unique
    groups = table["age"].map(age_group)
    chosen = subset["age"].map(age_group)
    for label, _, _ in AGE_GROUPS:
        assert abs((chosen == label).sum() - 300 * (groups == label).mean()) < 1
    position = table.reset_index().set_index("file").loc[subset["file"], "index"]
    assert position.is_monotonic_increasing
    pd.testing.assert_frame_equal(subset, robustness.stratified_subset(table, 300, 0))
    assert set(subset["file"]) != set(robustness.stratified_subset(table, 300, 1)["file"])
    assert len(robustness.stratified_subset(table, 5000, 0)) == 2000


def stub_model(size: int = 24) -> robustness.BenchModel:
    """Predicts from pixel statistics: age from brightness, gender from red against blue."""

    def predict(images: np.ndarray) -> dict[str, np.ndarray]:
        x = images.astype(float)
        p_female = 1 / (1 + np.exp(-(x[..., 0].mean((1, 2)) - x[..., 2].mean((1, 2))) / 10))
        return {"pred_age": x.mean((1, 2, 3)) / 4, "pred_gender": (p_female > 0.5).astype(int),
                "p_female": p_female}

    return robustness.BenchModel("stub", size, predict, {"kind": "stub"})


def folder_table(folder: Path) -> pd.DataFrame:
    files = sorted(p.name for p in folder.glob("*.jpg"))
    return pd.DataFrame({"file": files, "age": [int(f.split("_")[0]) for f in files],
                         "gender": [int(f.split("_")[1]) for f in files], "race": 0, "split": "test"})


def test_the_table_has_its_columns_and_the_clean_row_is_the_plain_metric(utk_folder):
    table = folder_table(utk_folder)
    model = stub_model()
    predictions, result, timing = robustness.run_benchmark([model], utk_folder, table, ("grayscale", "blur"),
                                                           seed=0)
    assert list(result.columns) == list(robustness.TABLE_COLUMNS)
    assert list(zip(result["corruption"], result["severity"], strict=True)) == [
        (CLEAN, 0), *(("grayscale", s) for s in (1, 2, 3)), *(("blur", s) for s in (1, 2, 3))]
    assert (result["n"] == len(table)).all() and timing["faces_predicted"] == 7 * len(table)
    # The clean row: the plain metrics of the model on the crops resized to its input.
    crops = robustness.decoded_crops(utk_folder, table["file"])
    out = model.predict(np.stack([model_input(c, model.image_size) for c in crops]))
    true = table["age"].to_numpy(float)
    clean = result.iloc[0]
    plain = metrics.age_metrics(true, out["pred_age"])
    assert clean["age_mae"] == pytest.approx(plain["age_mae"])
    assert clean["age_mean_signed_error"] == pytest.approx(np.mean(out["pred_age"] - true))
    assert clean["gender_accuracy"] == pytest.approx(np.mean(out["pred_gender"] == table["gender"]))
    rates = metrics.challenge_rates(true, out["pred_age"], 25)
    assert clean["challenge25_fpr_13_17"] == pytest.approx(rates[metrics.FPR_MINORS])
    assert clean["challenge25_friction_25plus"] == pytest.approx(rates[metrics.FRICTION_ADULTS])
    assert clean["n_13_17"] == ((true >= 13) & (true <= 17)).sum() and clean["age_mae_ratio"] == 1
    # A corrupted row is the same metric of the corrupted crops' predictions.
    gray = np.stack([model_input(corrupt(c, "grayscale", 3, 0, f), model.image_size)
                     for c, f in zip(crops, table["file"], strict=True)])
    gray_mae = metrics.age_metrics(true, model.predict(gray)["pred_age"])["age_mae"]
    assert result.iloc[3]["age_mae"] == pytest.approx(gray_mae)
    assert result.iloc[3]["gender_accuracy"] != clean["gender_accuracy"]  # red = blue once gray
    assert predictions.groupby(["corruption", "severity"]).size().eq(len(table)).all()


def constructed_table(clean: float, gray: float, middle: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Rows (corruption, severity, MAE, mean signed error) of one model "m"."""
    rows = [(CLEAN, 0, clean, 0.0), ("grayscale", 3, gray, 0.0),
            *((name, 2, mae, signed) for name, (mae, signed) in middle.items())]
    frame = pd.DataFrame(rows, columns=["corruption", "severity", "age_mae", "age_mean_signed_error"])
    return frame.assign(model="m")


def test_the_targets_are_computed_and_can_fail():
    table = constructed_table(5.0, 5.4, {"blur": (5.5, 1.0), "jpeg": (5.9, -1.5)})
    passing = robustness.target_checks(table, "m")
    assert passing["all_pass"]
    assert passing["grayscale_mae_within_10pct_of_clean"]["ratio"] == pytest.approx(1.08)
    assert passing["mean_mae_at_severity2_within_15pct_of_clean"]["mean_mae"] == pytest.approx(5.7)
    table = constructed_table(5.0, 5.6, {"blur": (5.5, 1.0), "jpeg": (6.2, -1.6)})
    failing = robustness.target_checks(table, "m")
    assert not failing["grayscale_mae_within_10pct_of_clean"]["pass"]
    assert not failing["mean_mae_at_severity2_within_15pct_of_clean"]["pass"]  # 5.85 / 5 = 1.17
    signed = failing["abs_mean_signed_error_at_severity2_at_most_1.5"]
    assert signed["failing"] == ["jpeg"] and signed["max_abs"] == pytest.approx(1.6)
    assert not failing["all_pass"]


# ---- a real (tiny) release, and the script ----------------------------------------------------

@pytest.fixture(scope="module")
def tiny_release_dir(tmp_path_factory) -> Path:
    """A two-member release of randomly initialised smoke CNNs, written as export writes one."""
    return write_tiny_release(tmp_path_factory.mktemp("release") / "tiny_release", ("member_a", "member_b"))


def test_a_release_predicts_its_mixture(tiny_release_dir, crops):
    release = load_release(tiny_release_dir)
    model = robustness.release_model(release)
    images = np.stack([model_input(c, model.image_size) for c in crops * 20])  # 80: a padded last batch
    out = model.predict(images)
    mixed = mixture_step(release.members, images, release.model.apply, True, release.weights)
    np.testing.assert_allclose(out["pred_age"], mixed["age"], rtol=1e-5)
    np.testing.assert_allclose(out["p_female"], mixed["p_gender"][:, 1], rtol=1e-5)
    np.testing.assert_array_equal(out["pred_gender"], np.asarray(mixed["p_gender"]).argmax(1))


def test_each_release_member_alone_predicts_as_that_member(tiny_release_dir, crops):
    release = load_release(tiny_release_dir)
    members = robustness.release_member_models(release)
    assert [m.name for m in members] == ["tiny_release.member_a", "tiny_release.member_b"]
    images = np.stack([model_input(c, members[0].image_size) for c in crops])
    for member, variables in zip(members, release.members, strict=True):
        alone = mixture_step((variables,), images, release.model.apply, True, (1.0,))
        np.testing.assert_allclose(member.predict(images)["pred_age"], alone["age"], rtol=1e-5)
    assert not np.allclose(members[0].predict(images)["pred_age"], members[1].predict(images)["pred_age"])


def test_a_release_whose_metadata_does_not_name_its_members_is_an_error(tiny_release_dir, tmp_path):
    folder = tmp_path / "unnamed"
    shutil.copytree(tiny_release_dir, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps({**metadata, "source_run": {}}))
    with pytest.raises(ValueError, match="names 0 members"):
        robustness.release_member_models(load_release(folder))


def test_a_single_network_release_has_no_members_of_its_own_and_scores_beside_an_earlier_one(
        tiny_release_dir, crops, tmp_path):
    import hashlib

    from research.predict.release import params_bytes

    ensemble = load_release(tiny_release_dir)
    folder = tmp_path / "single"
    shutil.copytree(tiny_release_dir, folder)
    blob = params_bytes(ensemble.members[0])
    (folder / "params.msgpack").write_bytes(blob)
    (folder / "metadata.json").write_text(json.dumps({"params_sha256": hashlib.sha256(blob).hexdigest()}))
    single = load_release(folder)
    assert len(single.members) == 1 and robustness.release_member_models(single) == []
    earlier = robustness.release_model(ensemble, kind="earlier release")
    assert earlier.source["kind"] == "earlier release" and earlier.source["members"] == 2
    images = np.stack([model_input(c, earlier.image_size) for c in crops])
    alone = robustness.release_model(single).predict(images)["pred_age"]
    assert not np.allclose(alone, earlier.predict(images)["pred_age"])


def test_the_script_writes_the_tables_targets_and_figures(tiny_release_dir, utk_folder, tmp_path):
    split = tmp_path / "split.csv"
    table = folder_table(utk_folder)
    table.assign(split=np.where(np.arange(len(table)) % 4 == 0, "train", "test")).to_csv(split, index=False)
    out = tmp_path / "robustness"
    command = [sys.executable, "scripts/corruption_benchmark.py", "--release", str(tiny_release_dir),
               "--data", str(utk_folder), "--split-file", str(split), "--subset", "20", "--seed", "3",
               "--corruptions", "grayscale", "jpeg", "--out", str(out), "--runs-dir", str(tmp_path),
               "--release-members"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = pd.read_csv(out / "corruptions.csv")
    models = {"tiny_release", "tiny_release.member_a", "tiny_release.member_b"}
    assert len(result) == 3 * 7 and (result["n"] == 20).all() and set(result["model"]) == models
    summary = json.loads((out / "summary.json").read_text())
    assert summary["subset"]["faces"] == 20 and summary["subset"]["seed"] == 3
    assert summary["subset"]["test_split_faces"] == 30
    targets = summary["targets"]["tiny_release"]
    assert {type(c["pass"]) for k, c in targets.items() if k != "all_pass"} == {bool}
    assert "mean_mae_at_severity2_within_15pct_of_clean" in targets
    assert summary["provenance"]["data_sha256"] and summary["corruptions"]["jpeg"]["parameters"]["2"] == 10
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 3 * 7 * 20
    assert (out / "corruptions.png").stat().st_size > 0 and (out / "samples.png").stat().st_size > 0


def test_the_sample_face_is_drawn_not_read():
    from research.evaluation.robustness_figures import procedural_face

    face = procedural_face(200, 0)
    assert face.shape == (200, 200, 3) and face.dtype == np.uint8 and face.std() > 20
    np.testing.assert_array_equal(face, procedural_face(200, 0))
