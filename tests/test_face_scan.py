"""The face scan of the cleaned crops (research/screening): the cascade, resuming from parts, the
grid of crops with no face, and the real detector on images that hold no face."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data

from research.configs.face_scan import get_config
from research.screening import face_scan
from research.screening.face_scan import NONE, dlib_passes, scan_crop, write_face_scan
from research.screening.grid import grid_sample, write_no_face_grid
from tests.conftest import synthetic_labels, synthetic_name

ASTRONAUT_FACE = (179, 83, 266, 170)  # dlib's box on the 512x512 astronaut (tests/test_detection.py)
SPLITS = ("train", "val", "test")


def split_file(folder, path):
    """A utkface-style split file over the synthetic folder's crops, splits in turn."""
    rows = [{"file": synthetic_name(i, *labels), "sha256": "-", "age": labels[0], "gender": labels[1],
             "race": labels[2], "split": SPLITS[i % 3]} for i, labels in enumerate(synthetic_labels())]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def brightness_passes(calls=None):
    """Fake detectors keyed on a crop's mean: bright -> found by the first HOG pass, middling by the
    second, one narrow band by the CNN, the rest by none (each detection records its call)."""
    def detector(name, low, high, score):
        def detect(image):
            if calls is not None:
                calls.append(name)
            mean = image.mean()
            return [((10, 10, 190, 190), score)] if low <= mean < high else [((0, 0, 50, 50), -0.2)]
        return detect

    # The synthetic crops' means lie between about 113 and 141: a few fall to each pass, and to none.
    return {"no_upsampling": detector("no_upsampling", 130, 256, 0.8),
            "default": detector("default", 124, 130, 0.4), "cnn": detector("cnn", 120, 124, 1.1)}


@pytest.fixture
def scan_setup(tmp_path, utk_folder):
    config = get_config()
    config.split_file = str(split_file(utk_folder, tmp_path / "utkface.csv"))
    config.parts_dir = str(tmp_path / "parts")
    config.chunk = 8
    return config, utk_folder, tmp_path / "out"


def test_the_cascade_stops_at_the_first_pass_that_finds_a_face():
    seconds = {}
    passes = brightness_passes()
    bright = scan_crop(np.full((200, 200, 3), 200, np.uint8), passes, 0.0, seconds)
    assert bright["found_by"] == "no_upsampling" and bright["faces"] == 1 and bright["score"] == 0.8
    assert "default_faces" not in bright and bright["box_left"] == 10
    dark = scan_crop(np.full((200, 200, 3), 30, np.uint8), passes, 0.0, seconds)
    assert dark["found_by"] == NONE and dark["faces"] == 0 and np.isnan(dark["box_left"])
    # Every pass ran and kept its best (below-threshold) score.
    assert [dark[f"{p}_faces"] for p in passes] == [0, 0, 0] and dark["cnn_score"] == -0.2
    assert seconds["no_upsampling"][0] == 2 and seconds["cnn"][0] == 1


def test_the_scan_covers_every_crop_counts_per_split_and_resumes_from_its_parts(scan_setup):
    config, folder, out = scan_setup
    calls = []
    summary = write_face_scan(config, folder, out, brightness_passes(calls))
    scan = pd.read_csv(out / "face_scan.csv")
    crops = pd.read_csv(config.split_file)
    assert sorted(scan["file"]) == sorted(crops["file"])
    assert list(scan.columns) == face_scan.scan_columns(config)
    assert scan.set_index("file")["split"].to_dict() == crops.set_index("file")["split"].to_dict()
    assert summary["no_face"] == int((scan["found_by"] == NONE).sum())
    assert sum(summary["per_split"][s]["crops"] for s in SPLITS) == len(crops)
    first = int((scan["found_by"] == "no_upsampling").sum())
    assert summary["per_split"]["all"]["found_by_no_upsampling"] == first
    assert calls.count("no_upsampling") == len(crops)
    assert calls.count("cnn") == int(scan["found_by"].isin(["cnn", NONE]).sum())
    assert summary["speed"]["no_upsampling"]["crops"] == len(crops)

    # Rerun: every part is there, no detector runs, the same table comes back.
    (out / "face_scan.csv").unlink()
    write_face_scan(config, folder, out, {k: pytest.fail for k in brightness_passes()})
    pd.testing.assert_frame_equal(pd.read_csv(out / "face_scan.csv"), scan)
    # One part lost (an interrupted scan): only its crops are scanned again.
    parts = sorted((out.parent / "parts").rglob("part_*.csv"))
    parts[1].unlink()
    calls.clear()
    write_face_scan(config, folder, out, brightness_passes(calls))
    assert calls.count("no_upsampling") == config.chunk
    pd.testing.assert_frame_equal(pd.read_csv(out / "face_scan.csv"), scan)


def test_the_grid_shows_only_crops_with_no_face_sampled_with_its_seed(scan_setup):
    config, folder, out = scan_setup
    write_face_scan(config, folder, out, brightness_passes())
    scan = pd.read_csv(out / "face_scan.csv", keep_default_na=False, na_values=[""])
    none = set(scan.loc[scan["found_by"] == NONE, "file"])
    assert len(none) >= 4, "the synthetic crops should leave a few with no face"
    shown = grid_sample(scan, 3, seed=0)
    assert len(shown) == 3 and set(shown["file"]) <= none and list(shown["age"]) == sorted(shown["age"])
    pd.testing.assert_frame_equal(shown, grid_sample(scan, 3, seed=0))
    assert set(grid_sample(scan, len(none) + 5, seed=1)["file"]) == none  # all when they fit
    config.grid_max = 3
    listed = {shown["file"][0]: "a test mark", "not_a_candidate.jpg": "never shown"}
    facts = write_no_face_grid(config, out / "face_scan.csv", folder, listed, out)
    assert (out / "no_face_grid.png").stat().st_size > 0 and Image.open(out / "no_face_grid.png").width > 300
    assert facts["candidates"] == len(none) and facts["shown"] == 3 and facts["confirmed_shown"] == 1


def astronaut_crop() -> np.ndarray:
    """The astronaut's face cut and resized the way a UTKFace crop frames a face (box ~0.86 of it)."""
    margin = round((ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0]) * 0.08)
    box = (ASTRONAUT_FACE[0] - margin, ASTRONAUT_FACE[1] - margin, ASTRONAUT_FACE[2] + margin,
           ASTRONAUT_FACE[3] + margin)
    crop = Image.fromarray(data.astronaut()).crop(box)
    return np.asarray(crop.resize((200, 200), Image.Resampling.BILINEAR))


def test_the_real_detectors_find_no_face_in_a_blank_or_noise_crop_and_find_a_real_one():
    config = get_config()
    passes = dlib_passes(config)
    rng = np.random.default_rng(0)
    for image in (np.full((200, 200, 3), 128, np.uint8), rng.integers(0, 256, (200, 200, 3), dtype=np.uint8)):
        row = scan_crop(image, passes, config.min_score, {})
        assert row["found_by"] == NONE and row["faces"] == 0
    face = scan_crop(astronaut_crop(), passes, config.min_score, {})
    assert face["found_by"] == "no_upsampling" and face["faces"] == 1
