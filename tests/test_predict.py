"""Prediction on new photos: the release format, detection + alignment on real photos shipped in
packages (skimage's astronaut has one face, chelsea the cat none), every bad-input case, the JSON and
CSV outputs, annotated images and exit codes. A tiny randomly initialised model is exported with the
real exporter into tmp_path; one test loads the committed release model."""

import dataclasses
import hashlib
import io
import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest
from _synthetic_release import synthetic_rules
from PIL import Image
from skimage import data

from research.configs import load_config
from research.configs.predict import get_config
from research.data.cache import decode_resize
from research.models.age_distribution import apply_correction, label_prior_correction, mass_below, moments
from research.models.age_interval import calibrated_interval
from research.models.factory import create_model
from research.predict import faces
from research.predict.estimate import (
    ID_CHECK,
    NO_CHECK,
    AgeEstimator,
    chip_to_input,
    chips_to_inputs,
    face_result,
)
from research.predict.pipeline import Predictor, predict_file
from research.predict.release import DEFAULT_RELEASE, MAX_RELEASE_BYTES, ReleaseError, load_release
from research.predict.rules import Decision
from research.release import export, model_card
from research.runs import checkpoints
from research.training.state import create_train_state
from research.vocabulary import describe_calibration
from scripts.predict import main as predict_main

REPO = Path(__file__).resolve().parents[1]
TINY_PRIOR = np.linspace(2.0, 0.5, 117)  # a made-up training prior for the tiny release's correction
ASTRONAUT_FACE = (179, 83, 266, 170)  # dlib's box on the 512x512 astronaut, checked by eye


def write_fake_run(run: Path, key: int = 0) -> Path:
    """A run folder with a randomly initialised smoke CNN checkpoint and the committed run's metrics."""
    config = load_config("cnn_baseline", "smoke")
    state = create_train_state(create_model(config.model), config, jax.random.key(key), steps_per_epoch=1)
    checkpoints.save(run / "checkpoints" / "best", 1, state, {"epoch": 1})
    real = REPO / "results/runs/cnn_baseline"
    (run / "config.json").write_text(json.dumps(config.to_dict()))
    summary = json.loads((real / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "name": "tiny", "config": config.to_dict()}))
    shutil.copy(real / "metrics_test.json", run / "metrics_test.json")
    shutil.copy(real / "predictions_test.csv", run / "predictions_test.csv")
    return run


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("release")
    run = write_fake_run(root / "runs" / "tiny")
    out = root / "models" / "tiny"
    export.export_release(run, out, breakdowns=REPO / "results/breakdowns/cnn_baseline")
    params = json.loads((out / "metadata.json").read_text())["params_sha256"]
    rules = synthetic_rules(root / "rules", params, label_prior_correction(TINY_PRIOR, 0.7))
    export.attach_rules(out, rules)
    return out


@pytest.fixture(scope="module")
def release_without_rules(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("norules")
    out = root / "models" / "tiny"
    export.export_release(write_fake_run(root / "runs" / "tiny"), out,
                          breakdowns=REPO / "results/breakdowns/cnn_baseline")
    return out


@pytest.fixture(scope="module")
def predictor(tiny_release) -> Predictor:
    return Predictor.from_release(tiny_release, get_config())


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


# ---- release -----------------------------------------------------------------------------------

def test_export_writes_a_release_that_loads_to_the_checkpoint(tiny_release, tmp_path):
    meta = json.loads((tiny_release / "metadata.json").read_text())
    assert meta["params_bytes"] == (tiny_release / "params.msgpack").stat().st_size <= MAX_RELEASE_BYTES
    mae = meta["test_metrics"]["metrics"]["age_mae"]
    assert mae["low"] < mae["value"] < mae["high"]
    assert "git_commit" in meta["provenance"]
    card = (tiny_release / "MODEL_CARD.md").read_text()
    for needed in ("Intended use", "not** an automated age gate", "Known biases", "non-commercial",
                   "Challenge 25"):
        assert needed in card
    release = load_release(tiny_release)
    assert release.weights == (1.0,)
    assert set(release.members[0]) == {"params", "batch_stats"}  # no optimizer state
    config = load_config("cnn_baseline", "smoke")
    state = create_train_state(create_model(config.model), config, jax.random.key(0), steps_per_epoch=1)
    for a, b in zip(jax.tree_util.tree_leaves(release.members[0]),
                    jax.tree_util.tree_leaves({"params": state.params, "batch_stats": state.batch_stats}),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    broken = tmp_path / "broken"
    shutil.copytree(tiny_release, broken)
    blob = bytearray((broken / "params.msgpack").read_bytes())
    blob[-1] ^= 0xFF
    (broken / "params.msgpack").write_bytes(bytes(blob))
    with pytest.raises(ReleaseError, match="sha256"):
        load_release(broken)
    with pytest.raises(ReleaseError, match="missing"):
        load_release(tmp_path)
    # the rules travel with their checksum and the params they were made for
    rules_blob = (tiny_release / "rules.json").read_bytes()
    assert (tiny_release / "rules.sha256").read_text().split()[0] == hashlib.sha256(rules_blob).hexdigest()
    assert load_release(tiny_release).rules == json.loads(rules_blob)
    tampered = tmp_path / "tampered"
    shutil.copytree(tiny_release, tampered)
    (tampered / "rules.json").write_bytes(rules_blob.replace(b'"tau"', b'"tau" ', 1))
    with pytest.raises(ReleaseError, match="rules.json: sha256"):
        load_release(tampered)
    (tampered / "rules.json").unlink()
    with pytest.raises(ReleaseError, match="rules.json is missing"):
        load_release(tampered)
    other = synthetic_rules(tmp_path / "other_rules", "0" * 64, n=600)
    with pytest.raises(ValueError, match="made for params"):
        export.attach_rules(tiny_release, other)


def test_loading_a_release_needs_no_orbax_and_no_training_code(tiny_release):
    code = ("import sys; from research.predict.release import load_release; load_release(sys.argv[1]); "
            "bad = [m for m in sys.modules if m.startswith(('orbax', 'optax', 'research.training'))]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code, str(tiny_release)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_export_refuses_a_release_over_the_size_limit(tiny_release, tmp_path, monkeypatch):
    monkeypatch.setattr(export, "MAX_RELEASE_BYTES", 1000)
    run = write_fake_run(tmp_path / "run")
    with pytest.raises(ValueError, match="over the release limit"):
        export.export_release(run, tmp_path / "out", breakdowns=REPO / "results/breakdowns/cnn_baseline")
    assert not (tmp_path / "out" / "params.msgpack").exists()


def test_an_ensemble_release_predicts_the_mixture_that_scored_its_metrics(tmp_path):
    from research.evaluation.ensemble import average_predictions
    from research.runs.folder import PREDICTION_COLUMNS

    runs = tmp_path / "runs"
    for name, key in (("a", 1), ("b", 2)):
        write_fake_run(runs / name, key)
    ensemble = runs / "ens"
    ensemble.mkdir()
    summary = json.loads((runs / "a" / "summary.json").read_text())
    weights = {"a": 0.7, "b": 0.3}
    summary = {"name": "ens", "kind": "ensemble", "weights": weights, "members": ["a", "b"],
               "protocol": summary["protocol"]}
    (ensemble / "summary.json").write_text(json.dumps(summary))
    shutil.copy(runs / "a" / "metrics_test.json", ensemble / "metrics_test.json")
    shutil.copy(runs / "a" / "predictions_test.csv", ensemble / "predictions_test.csv")
    meta = export.export_release(ensemble, tmp_path / "release",
                                 breakdowns=REPO / "results/breakdowns/cnn_baseline")
    assert meta["num_members"] == 2 and [m["name"] for m in meta["source_run"]["members"]] == ["a", "b"]
    assert "An ensemble of 2 networks" in (tmp_path / "release" / "MODEL_CARD.md").read_text()
    release = load_release(tmp_path / "release")
    assert release.weights == (0.7, 0.3) and len(release.members) == 2
    size = int(release.config.image_size)
    images = np.random.default_rng(0).integers(0, 256, (5, size, size, 3), dtype=np.uint8)
    mixed = AgeEstimator(release, get_config()).raw(images)
    # The same images through each member alone, then mixed as scripts/ensemble.py mixes prediction files.
    frames = []
    for variables in release.members:
        single = dataclasses.replace(release, members=(variables,), weights=(1.0,))
        out = AgeEstimator(single, get_config()).raw(images)
        frame = pd.DataFrame({"file": [f"{k}.jpg" for k in range(5)], "age": 30, "gender": 0, "race": 0,
                              "pred_age": out["age"], "age_std": out["age_std"],
                              "pred_gender": out["p_gender"].argmax(1), "p_female": out["p_gender"][:, 1],
                              "pred_race": out["p_race"].argmax(1)})
        frame[[f"p_race{j}" for j in range(5)]] = out["p_race"]
        frames.append(frame[PREDICTION_COLUMNS])
    assert not np.allclose(frames[0]["pred_age"], frames[1]["pred_age"])  # the members differ
    expected = average_predictions(frames, [0.7, 0.3])
    np.testing.assert_allclose(mixed["age"], expected["pred_age"], rtol=1e-5)
    np.testing.assert_allclose(mixed["age_std"], expected["age_std"], rtol=1e-4)
    np.testing.assert_allclose(mixed["p_gender"][:, 1], expected["p_female"], rtol=1e-5)
    np.testing.assert_allclose(mixed["p_race"], expected[[f"p_race{j}" for j in range(5)]], rtol=1e-5)
    with pytest.raises(ValueError, match="--checkpoint does not apply"):
        export.export_release(ensemble, tmp_path / "other", checkpoint_dir=tmp_path)


# ---- faces -------------------------------------------------------------------------------------

def test_one_face_with_a_plausible_box_on_the_astronaut(predictor, astronaut, tmp_path):
    record, _ = predict_file(predictor, save(astronaut, tmp_path / "a.png"), 25)
    assert record["status"] == "ok" and len(record["faces"]) == 1
    face = record["faces"][0]
    assert np.abs(np.subtract(face["box"], ASTRONAUT_FACE)).max() <= 10
    left, top, right, bottom = face["box"]
    assert all(left - 5 <= x <= right + 5 and top - 5 <= y <= bottom + 30 for x, y in face["landmarks"])
    low, high = face["age_interval"]
    assert 0 <= low <= face["age"] <= high <= 116
    assert face["gender"] in ("male", "female") and 0.5 <= face["gender_probability"] <= 1
    assert face["challenge"]["decision"] in (ID_CHECK, NO_CHECK)


def test_no_face_on_the_cat(predictor, tmp_path):
    record, _ = predict_file(predictor, save(Image.fromarray(data.chelsea()), tmp_path / "cat.jpg"), 25)
    assert record["status"] == "no_face" and record["faces"] == []
    assert "no face" in record["message"]


def test_many_faces_are_all_returned_in_original_coordinates(predictor, astronaut, tmp_path):
    grid = Image.new("RGB", (1024, 1024))
    for x in (0, 512):
        for y in (0, 512):
            grid.paste(astronaut, (x, y))
    record, _ = predict_file(predictor, save(grid, tmp_path / "four.png"), 25)
    assert record["status"] == "ok" and len(record["faces"]) == 4
    centre = np.add(ASTRONAUT_FACE[:2], ASTRONAUT_FACE[2:]) / 2
    found = sorted((tuple(np.add(f["box"][:2], f["box"][2:]) / 2 - centre) for f in record["faces"]),
                   key=lambda xy: (round(xy[0] / 256), round(xy[1] / 256)))  # by tile: offsets differ by px
    assert np.abs(np.subtract(found, [(0, 0), (0, 512), (512, 0), (512, 512)])).max() <= 15


def test_chip_resize_matches_the_training_cache(astronaut):
    chip = np.asarray(astronaut.crop((130, 40, 330, 240)))
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, "JPEG", quality=95)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    ours, cache = chip_to_input(decoded, 64).astype(float), decode_resize(buffer.getvalue(), 64).astype(float)
    naive = np.asarray(Image.fromarray(decoded).resize((64, 64), Image.Resampling.BILINEAR,
                                                       reducing_gap=None)).astype(float)
    assert np.abs(ours - cache).mean() < 0.5 * np.abs(naive - cache).mean()


def fallback_out(decision: Decision, age, std) -> dict:
    low, high = decision.stated_interval(np.asarray(age), np.asarray(std))
    return {"age": np.asarray(age), "age_std": np.asarray(std), "age_low": low, "age_high": high,
            "p_under": np.full(len(age), 0.5), "p_gender": np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])}


def test_the_fallback_decision_uses_the_estimate_and_the_lower_end_of_its_interval():
    decision = Decision("interval", 25, 1.645, "fallback", z=1.645)
    out = fallback_out(decision, [30.0, 30.0, 20.0], [1.0, 5.0, 1.0])
    results = [face_result(out, i, decision) for i in range(3)]
    assert [r["challenge"]["decision"] for r in results] == [NO_CHECK, ID_CHECK, ID_CHECK]
    assert results[1]["age_interval"] == [pytest.approx(21.8, abs=0.05), pytest.approx(38.2, abs=0.05)]
    assert results[0]["gender"] == "male" and results[1]["gender"] == "female"
    assert results[1]["age_interval_level"] is None and results[1]["challenge"]["rule"] == "interval"
    assert face_result(fallback_out(decision, [30.0] * 3, [40.0] * 3), 2, decision)["age_interval"][0] == 0


def test_the_command_states_the_calibrated_interval_and_p_under_of_the_corrected_distribution(
        predictor, tiny_release, astronaut):
    rules = json.loads((tiny_release / "rules.json").read_text())
    faces_found, chips = predictor.predict_array(np.asarray(astronaut), 25)
    raw = predictor.estimator.raw(chips_to_inputs(chips, predictor.estimator.image_size))
    probs = apply_correction(raw["age_probs"], rules["age_correction"])
    age, std = moments(probs)
    level = rules["interval"]["stated_level"]
    low, high = calibrated_interval(age, std, level, rules["interval"])
    face = faces_found[0]
    assert face["age"] == round(float(age[0]), 1) and face["age_interval_level"] == level
    assert face["age_interval"] == [round(float(low[0]), 1), round(min(float(high[0]), 116), 1)]
    assert face["challenge"]["p_under"] == round(float(mass_below(probs, 25)[0]), 4)
    default = rules["challenges"]["25"]
    assert face["challenge"]["rule"] == default["default_rule"]
    assert face["challenge"]["parameter"] == default["rules"][default["default_rule"]]["parameter"]
    assert abs(face["age"] - float(raw["age"][0])) > 0.5  # the corrected estimate, not the network's


def test_missing_landmark_package_is_named_in_the_error(monkeypatch):
    monkeypatch.setattr(faces, "LANDMARK_PACKAGE", "no_such_landmark_package")
    with pytest.raises(FileNotFoundError, match="no_such_landmark_package"):
        faces.landmark_model_path()


# ---- bad input ---------------------------------------------------------------------------------

def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height``, followed by one tiny data chunk."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


def make_bad_inputs(folder: Path, astronaut: Image.Image) -> dict[str, tuple[str, int | None]]:
    """file name -> (expected status, expected faces or None)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("not an image")
    (folder / "empty.jpg").write_bytes(b"")
    full = io.BytesIO()
    astronaut.save(full, "JPEG")
    (folder / "truncated.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage" * 10)  # "Truncated File Read"
    png_header_only(folder / "bomb.png", 30000, 30000)
    save(astronaut.convert("L"), folder / "gray.png")
    rgba = astronaut.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size).point(lambda v: 255 if v < 200 else 0))
    save(rgba, folder / "rgba.png")
    save(astronaut.convert("CMYK"), folder / "cmyk.jpg")
    sixteen = (np.asarray(astronaut.convert("L"), np.uint16) * 257).astype(np.uint16)
    assert Image.fromarray(sixteen).mode == "I;16"
    save(Image.fromarray(sixteen), folder / "sixteen.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: a viewer turns it 90 degrees clockwise to show it upright
    save(astronaut.rotate(90, expand=True), folder / "rotated.jpg", exif=exif)
    huge = astronaut.convert("L").resize((12000, 12000), Image.Resampling.NEAREST)
    huge.save(folder / "huge.jpg", quality=40)
    save(Image.fromarray(data.chelsea()), folder / "cat.jpg")
    return {"notes.txt": ("not_an_image", None), "empty.jpg": ("empty_file", None),
            "truncated.jpg": ("truncated", None), "garbage.jpg": ("truncated", None),
            "bomb.png": ("too_large", None), "gray.png": ("ok", 1),
            "rgba.png": ("ok", 1), "cmyk.jpg": ("ok", 1), "sixteen.png": ("ok", 1), "rotated.jpg": ("ok", 1),
            # huge.jpg: the face, and at the command's threshold perhaps a detection on her clothing
            # (a grayscale JPEG at quality 40); the face must be the best-scoring one (checked below).
            "huge.jpg": ("ok", None), "cat.jpg": ("no_face", 0)}


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory, astronaut):
    folder = tmp_path_factory.mktemp("mixed") / "photos"
    return folder, make_bad_inputs(folder, astronaut)


def test_every_bad_input_gets_its_status(predictor, bad_folder):
    folder, expected = bad_folder
    for name, (status, count) in expected.items():
        record, _ = predict_file(predictor, folder / name, 25)
        assert record["status"] == status, (name, record)
        assert record["message"]
        if count is not None:
            assert len(record["faces"]) == count, (name, record)
    rotated, _ = predict_file(predictor, folder / "rotated.jpg", 25)
    assert (rotated["width"], rotated["height"]) == (512, 512)
    assert any("EXIF" in note for note in rotated["notes"])
    huge, array = predict_file(predictor, folder / "huge.jpg", 25)
    assert max(array.shape) <= get_config().max_side and (huge["width"], huge["height"]) == (12000, 12000)
    box = np.divide(huge["faces"][0]["box"], 12000 / 512)  # back to astronaut pixels
    assert np.abs(box - ASTRONAUT_FACE).max() <= 15


def test_cli_on_a_mixed_folder_writes_json_csv_and_annotations(tiny_release, bad_folder, tmp_path, capsys):
    folder, expected = bad_folder
    code = predict_main([str(folder), str(tmp_path / "missing.jpg"), "--json",
                         "--csv", str(tmp_path / "o.csv"), "--annotate", str(tmp_path / "ann"),
                         "--checkpoint", str(tiny_release)])
    assert code == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert set(payload) == {"model", "challenge", "rule", "age_correction", "interval", "summary", "files"}
    last = captured.err.strip().splitlines()[-1]  # the summary line ends stderr
    assert last.startswith(f"{len(expected) + 1} photos (") and "faces/s" in last
    rules = json.loads((tiny_release / "rules.json").read_text())
    assert payload["challenge"] == 25 and describe_calibration(rules["interval"]) in payload["interval"]
    assert payload["age_correction"] == {"kind": "label_prior", "tau": 0.7}
    assert f"covered {100 * rules['coverage']['overall'][0]:.1f}%" in payload["interval"]
    assert payload["rule"]["rule"] == rules["challenges"]["25"]["default_rule"]
    assert "validation" in payload["rule"]["source"]
    statuses = {Path(r["path"]).name: r["status"] for r in payload["files"]}
    assert statuses == {**{n: s for n, (s, _) in expected.items()}, "missing.jpg": "not_found"}
    for record in payload["files"]:
        assert set(record) >= {"path", "status", "message", "width", "height", "notes", "faces"}
        for face in record["faces"]:
            assert set(face) == {"box", "detection_score", "detector", "landmarks", "age", "age_interval",
                                 "age_interval_level", "age_std", "gender", "gender_probability", "challenge"}
            assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
            assert set(face["challenge"]) == {"threshold", "rule", "parameter", "p_under", "decision",
                                              "reason"}
            assert 0 <= face["challenge"]["p_under"] <= 1
    counts = {Path(r["path"]).name: len(r["faces"]) for r in payload["files"]}
    assert all(counts[n] == c for n, (_, c) in expected.items() if c is not None)
    assert counts["huge.jpg"] >= 1
    assert payload["summary"]["faces"] == sum(counts.values())
    table = pd.read_csv(tmp_path / "o.csv")
    assert len(table) == payload["summary"]["faces"] + sum(not r["faces"] for r in payload["files"])
    assert {"age_interval_level", "rule", "parameter", "p_under"} <= set(table.columns)
    annotated = {r["status"]: Path(r["annotated"]) for r in payload["files"] if "annotated" in r}
    assert set(annotated) == {"ok", "no_face"}
    with Image.open(annotated["ok"]) as image:
        assert image.format == "JPEG" and min(image.size) > 100
    beside = json.loads((tmp_path / "ann" / "predictions.json").read_text())
    assert beside["files"] == payload["files"] and beside["summary"]["faces"] == payload["summary"]["faces"]


def test_exit_codes(tiny_release, tmp_path, capsys):
    (tmp_path / "junk.txt").write_text("x")
    assert predict_main([str(tmp_path / "junk.txt"), "--checkpoint", str(tiny_release)]) == 1
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    assert predict_main([str(empty), "--checkpoint", str(tiny_release)]) == 1
    assert predict_main([str(tmp_path / "junk.txt"), "--checkpoint", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as usage:
        predict_main([str(tmp_path / "junk.txt"), "--challenge", "0"])
    assert usage.value.code == 2
    assert "not a release model folder" in capsys.readouterr().err


def test_a_release_without_rules_falls_back_to_the_uncalibrated_interval(release_without_rules, astronaut,
                                                                         tmp_path, capsys):
    code = predict_main([str(save(astronaut, tmp_path / "a.png")), "--json", "--checkpoint",
                         str(release_without_rules)])
    assert code == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert "warning: fallback: the release carries no rules.json" in captured.err
    assert "not a calibrated interval" in payload["interval"] and payload["age_correction"] is None
    assert payload["rule"]["rule"] == "interval" and payload["rule"]["parameter"] == get_config().interval_z
    assert "This release carries no rules.json" in (release_without_rules / "MODEL_CARD.md").read_text()
    assert predict_main([str(tmp_path / "a.png"), "--rule", "probability", "--checkpoint",
                         str(release_without_rules)]) == 2
    assert "give the probability rule's p" in capsys.readouterr().err


def test_the_fallback_interval_is_the_one_chosen_on_validation_for_the_committed_release():
    point = load_release(DEFAULT_RELEASE).metadata["interval_operating_point"]
    assert point["chosen_on"] == "validation"
    assert get_config().interval_z == pytest.approx(point["z"])


def test_the_committed_model_card_is_current_and_states_the_calibrated_interval_and_operating_point(
        tmp_path, monkeypatch):
    card = (DEFAULT_RELEASE / "MODEL_CARD.md").read_text()
    rules = load_release(DEFAULT_RELEASE).rules
    assert rules is not None, "the committed release carries no rules.json"
    for stale in ("not a calibrated", "not calibrated", "z = 1.15", "command default", "interval z"):
        assert stale not in card, stale
    assert f"covered {100 * rules['coverage']['overall'][0]:.1f}" in card
    entry = rules["challenges"]["25"]
    point = entry["rules"][entry["default_rule"]]
    assert f"its cost is asking {100 * point['test']['friction_25plus'][0]:.1f}" in card
    init_from = load_release(DEFAULT_RELEASE).config.model.get("init_from", "")
    assert not init_from or f"continuing the release `{init_from}`" in card  # a continued run says so
    # re-rendered from the release folder and results files alone (no checkpoint), it is the committed card
    copy = tmp_path / DEFAULT_RELEASE.name
    shutil.copytree(DEFAULT_RELEASE, copy)
    monkeypatch.chdir(REPO)
    export.write_card(copy, REPO / "results/runs" / DEFAULT_RELEASE.name)
    assert (copy / "MODEL_CARD.md").read_text() == card


def test_committed_release_model_on_the_astronaut(tmp_path, astronaut):
    done = subprocess.run([sys.executable, "-m", "scripts.predict", str(save(astronaut, tmp_path / "a.jpg")),
                           "--json"], cwd=REPO, capture_output=True, text=True, timeout=900)  # cold compile
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads(done.stdout)
    assert payload["model"]["name"] == DEFAULT_RELEASE.name
    rules = load_release(DEFAULT_RELEASE).rules
    correction = rules["age_correction"]
    assert payload["age_correction"] == {"kind": correction["kind"], "lambda": correction["lambda"]} if \
        correction["kind"] == "estimate_map" else payload["age_correction"]["tau"] == correction["tau"]
    assert payload["rule"]["rule"] == rules["challenges"]["25"]["default_rule"]
    (face,) = payload["files"][0]["faces"]
    assert 18 <= face["age"] <= 60 and face["gender"] == "female"  # an adult woman
    assert load_release(DEFAULT_RELEASE).metadata["params_bytes"] <= MAX_RELEASE_BYTES


def test_an_unforeseen_failure_on_one_file_does_not_stop_the_others(predictor, astronaut, tmp_path,
                                                                   monkeypatch):
    from research.predict import pipeline

    real = pipeline.load_image

    def load_or_fail(path, *args):
        if Path(path).name == "bad.png":
            raise RuntimeError("boom")
        return real(path, *args)

    monkeypatch.setattr(pipeline, "load_image", load_or_fail)
    for name in ("bad.png", "good.png"):
        save(astronaut, tmp_path / name)
    records = pipeline.predict_paths(predictor, [tmp_path], 25)
    assert [(Path(r["path"]).name, r["status"]) for r in records] == [("bad.png", "error"),
                                                                        ("good.png", "ok")]
    assert "boom" in records[0]["message"] and len(records[1]["faces"]) == 1


def test_model_card_rule_table_matches_the_command_rule():
    from research.evaluation.metrics import challenge_rates
    from research.predict.estimate import id_check
    from research.release.card_command import command_rule_table

    rng = np.random.default_rng(0)
    age = rng.integers(10, 60, 400)
    frame = pd.DataFrame({"age": age, "pred_age": age + rng.normal(3, 5, 400), "age_std": 6.0})
    rows = {line.split(" | ")[0].strip("| ").split(" ")[0]: line for line in
            command_rule_table(frame, 1.645).splitlines()[2:]}
    assert set(rows) == {"0", "0.5", "1", "1.645"} and "command default" in rows["1.645"]
    rates = challenge_rates(frame["age"].to_numpy(float), frame["pred_age"].to_numpy(float), 25)
    assert f"| {100 * rates['fpr_13_17']:.1f} | {100 * rates['friction_18_24']:.1f} |" in rows["0"]
    ask = id_check(frame["pred_age"].to_numpy(), frame["age_std"].to_numpy(), 1.0, 25)
    assert f"| {100 * ask[age >= 25].mean():.1f} |" in rows["1"]
    assert id_check(30.0, 4.0, 1.645, 25) and not id_check(30.0, 2.0, 1.645, 25)
    assert not id_check(30.0, 4.0, 0.0, 25)


def test_the_card_states_the_corruption_benchmark_only_for_the_params_it_scored(tmp_path):
    metadata = json.loads((DEFAULT_RELEASE / "metadata.json").read_text())
    gray = {"clean_mae": 5.0, "grayscale_mae": 6.0, "ratio": 1.2, "limit_ratio": 1.1, "pass": False}
    mean = {"corruptions": ["blur", "noise"], "mean_mae": 5.5, "ratio": 1.1, "limit_ratio": 1.15,
            "pass": True}
    signed = {"mean_signed_error": {"blur": -2.0, "noise": 3.0}, "limit_years": 1.5,
              "failing": ["blur", "noise"], "pass": False}
    checks = {"grayscale_mae_within_10pct_of_clean": gray,
              "mean_mae_at_severity2_within_15pct_of_clean": mean,
              "abs_mean_signed_error_at_severity2_at_most_1.5": signed}
    summary = {"models": {metadata["name"]: {"params_sha256": metadata["params_sha256"]}},
               "targets": {metadata["name"]: checks}, "subset": {"faces": 50, "seed": 4}}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    lines = model_card.robustness_lines(export.benchmark_of(path, metadata), metadata["name"])
    assert lines[0].startswith("On 50 test faces") and "seed 4" in lines[0]
    assert "6.00 (1.20 x clean; target at most 1.1 x: not met)" in lines[1]
    assert "2 corruptions at the middle severity: MAE 5.50 (1.10 x clean; target at most 1.15 x: met)" \
        in lines[2]
    assert lines[3].endswith("noise +3.0, blur -2.0.")  # the largest shift first
    other = {**summary, "models": {metadata["name"]: {"params_sha256": "0" * 64}}}
    path.write_text(json.dumps(other))
    assert export.benchmark_of(path, metadata) is None
    assert "has not been run" in model_card.robustness_lines(None, metadata["name"])[0]
    assert "## Photos unlike UTKFace's" in (DEFAULT_RELEASE / "MODEL_CARD.md").read_text()
