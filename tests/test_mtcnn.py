"""MTCNN (research/predict/mtcnn.py): the weights read from the installed package with nothing but
arrays accepted, small faces found, its boxes framed as HOG's, and its threshold sweepable from one pass.

Faces come from skimage's astronaut (tests/test_detection.py's canvases); no dataset is needed.
"""

import json
import pickle
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image
from test_detection import face_canvas, found_boxes

from research.configs.predict import detector_config, get_config
from research.models.layers import im2col_conv
from research.predict import mtcnn
from research.predict.faces import FaceAligner, box_iou, hog_frame
from research.release.detection_bench import at_threshold

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cascade() -> mtcnn.MTCNN:
    return mtcnn.MTCNN(min_face=24)


@pytest.fixture(scope="module")
def mtcnn_aligner() -> FaceAligner:
    return FaceAligner(detector_config("mtcnn"))


def test_the_packaged_weights_load_with_their_checksum_and_a_wrong_one_is_refused(tmp_path):
    weights = mtcnn.load_weights()
    assert {net: len(arrays) for net, arrays in weights.items()} == {"pnet": 13, "rnet": 16, "onet": 21}
    assert weights["pnet"][0].shape == (3, 3, 3, 10) and weights["onet"][-2].shape == (256, 10)
    copy = tmp_path / "w.npy"
    copy.write_bytes(mtcnn.weights_path().read_bytes() + b"\0")
    with pytest.raises(ValueError, match="reinstall that version"):
        mtcnn.load_weights(copy)


def test_the_unpickler_encodes_latin1_only():
    assert mtcnn._latin1_only("\xff\x00") == b"\xff\x00"
    with pytest.raises(pickle.UnpicklingError, match="codec"):
        mtcnn._latin1_only("x", "rot13")


def test_a_weights_file_holding_anything_but_arrays_is_refused_without_running_it(tmp_path):
    called = tmp_path / "called"

    class Payload:  # unpickling this would create a file
        def __reduce__(self):
            return (Path.touch, (called,))

    path = tmp_path / "evil.npy"
    np.save(path, np.array({"pnet": Payload()}, dtype=object), allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError, match="not only arrays"):
        mtcnn.load_weights(path, sha256=None)
    assert not called.exists()


def test_a_missing_package_names_the_install_command(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mtcnn==0.1.1"):
        mtcnn.weights_path()


def test_pnet_output_size_matches_the_network():
    for side in (12, 13, 31, 64, 97):
        prob, _ = mtcnn.pnet(mtcnn.load_weights()["pnet"], np.zeros((1, side, side, 3), np.float32))
        assert prob.shape[1] == mtcnn.pnet_output_size(side)


@pytest.mark.parametrize("shape", [(45, 61), (44, 60), (33, 50)])
def test_a_padded_level_gives_the_cells_of_the_level_alone(shape):
    """Padding a pyramid level to a compile bucket changes none of its cells: past the image the first
    pooling sees -inf, as TensorFlow's 'same' pooling did on the level alone (odd sizes included)."""
    weights = mtcnn.load_weights()["pnet"]
    level = np.random.default_rng(0).uniform(-1, 1, (1, *shape, 3)).astype(np.float32)
    alone = [np.asarray(o)[0] for o in mtcnn.pnet(weights, level)]
    padded = np.zeros((1, 64, 64, 3), np.float32)
    padded[:, :shape[0], :shape[1]] = level
    cells = [mtcnn.pnet_output_size(n) for n in shape]
    inside = [np.asarray(o)[0, :cells[0], :cells[1]]
              for o in mtcnn.pnet(weights, padded, np.asarray(shape, np.int32))]
    for a, b in zip(alone, inside, strict=True):
        np.testing.assert_allclose(a[:cells[0], :cells[1]], b, atol=1e-5)


def test_pnets_convolution_gives_what_im2col_gives(monkeypatch):
    """P-Net runs XLA's convolution (faster on its one large image), R-Net and O-Net im2col's on a
    CPU: the choice is one of speed alone, P-Net through im2col gives the same cells."""
    weights = mtcnn.load_weights()["pnet"]
    level = np.random.default_rng(1).uniform(-1, 1, (1, 70, 52, 3)).astype(np.float32)
    fast = [np.asarray(o) for o in mtcnn.pnet(weights, level)]
    monkeypatch.setattr(mtcnn, "_pnet_conv", lambda x, w, b: im2col_conv(x, w, (1, 1), "VALID") + b)
    # A new function, so that jit traces it anew (with im2col) rather than reusing pnet's trace.
    by_im2col = jax.jit(lambda w, x: mtcnn.pnet.__wrapped__(w, x))(weights, level)
    for a, b in zip(fast, by_im2col, strict=True):
        np.testing.assert_allclose(a, np.asarray(b), atol=1e-5)
    assert not np.array_equal(fast[1], np.asarray(by_im2col[1]))  # the other convolution did run


def test_a_crop_past_the_image_is_black_there_and_resized_from_the_pixels_inside():
    """``_crops`` cuts 1-based boxes with PIL's crop (black past the image, as the reference pads),
    box-filtered when it shrinks a crop, bilinear when it enlarges one."""
    image = np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    boxes = np.array([[-9.0, -4.0, 30.0, 35.0], [11.0, 6.0, 58.0, 53.0], [30.0, 2.0, 49.0, 21.0]])
    for crop, (x1, y1, x2, y2) in zip(mtcnn._crops(image, boxes, 24), boxes.astype(int) - 1, strict=True):
        patch = np.zeros((y2 - y1 + 1, x2 - x1 + 1, 3), np.uint8)
        sy, sx = max(y1, 0), max(x1, 0)
        inside = image[sy:y2 + 1, sx:x2 + 1]
        patch[sy - y1:sy - y1 + inside.shape[0], sx - x1:sx - x1 + inside.shape[1]] = inside
        resample = Image.Resampling.BOX if min(patch.shape[:2]) >= 24 else Image.Resampling.BILINEAR
        expected = np.asarray(Image.fromarray(patch).resize((24, 24), resample), np.float32)
        np.testing.assert_array_equal(crop, mtcnn._normalise(expected).transpose(1, 0, 2))


def test_nms_over_all_pairs_keeps_what_the_box_by_box_pass_keeps():
    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(0, 300))
        corner, side = rng.uniform(0, 300, (n, 2)), rng.uniform(10, 80, (n, 1))
        boxes = np.concatenate([corner, corner + side + rng.uniform(-3, 3, (n, 1))], axis=1)
        boxes = np.fix(boxes) if trial % 2 else boxes
        scores = rng.uniform(0, 1, n)
        for threshold, by_min in ((0.5, False), (0.7, False), (0.7, True)):
            kept = mtcnn.nms(boxes, scores, threshold, by_min)
            np.testing.assert_array_equal(kept, mtcnn.nms(boxes, scores, threshold, by_min, max_matrix=0))
            if n:
                assert 0 < len(kept) <= n and kept[0] == np.argmax(scores)


def test_the_pyramid_starts_at_min_face_and_is_capped_for_large_photos(cascade):
    assert cascade.smallest_face(480, 640) == pytest.approx(24)
    assert cascade.scales(480, 640)[0] == pytest.approx(0.5)
    big = cascade.smallest_face(3000, 4000)  # capped at max_pixels: smallest face grows with the photo
    assert big == pytest.approx(12 / (250_000 / 12e6) ** 0.5)
    scales = cascade.scales(480, 640)
    assert all(b / a == pytest.approx(cascade.factor) for a, b in zip(scales, scales[1:], strict=False))
    assert 480 * scales[-1] >= 12 > 480 * scales[-1] * cascade.factor
    with pytest.raises(ValueError, match="at least"):
        mtcnn.MTCNN(min_face=8)


def test_faces_of_40_px_are_all_found_and_framed_as_hog_frames_them(mtcnn_aligner):
    for width, count in ((40, 5), (120, 3)):
        canvas, expected = face_canvas(width, count, seed=1)
        assert found_boxes(mtcnn_aligner, canvas, expected) == count
    canvas, expected = face_canvas(80, 3, seed=2)
    boxes = [face.box for face, _ in mtcnn_aligner.detect(canvas)]
    for box in expected:  # mapped to HOG's framing, each box lies close to where HOG's would be
        assert max(box_iou(box, b) for b in boxes) >= 0.6
    assert all(face.detector == "mtcnn" for face, _ in mtcnn_aligner.detect(canvas))


def test_hog_frame_moves_and_scales_the_box_by_hand():
    # a 100 x 120 box centred at (150, 260): centre moved by (10, -12) px, size 80 x 60
    assert hog_frame((100, 200, 200, 320), (0.1, -0.1, 0.8, 0.5)) == (120, 218, 200, 278)
    assert hog_frame((0, 0, 10, 10), (0, 0, 1, 1)) == (0, 0, 10, 10)


def test_filtering_a_low_threshold_pass_equals_running_the_cascade_at_the_threshold(cascade):
    canvas, _ = face_canvas(44, 4, seed=3)
    rng = np.random.default_rng(0)  # texture for a few weaker candidates
    canvas = np.clip(canvas + rng.normal(0, 25, canvas.shape), 0, 255).astype(np.uint8)
    low = [(d.box, d.score) for d in cascade.detect(canvas)]
    assert len(low) >= 4 and len(at_threshold(low, 0.999)) < len(low)  # the sweep removes some
    for threshold in (0.8, 0.95, 0.99, 0.999):
        strict = mtcnn.MTCNN(min_face=24, thresholds=(0.6, 0.7, threshold), weights=mtcnn.load_weights())
        direct = [(d.box, d.score) for d in strict.detect(canvas)]
        assert sorted(at_threshold(low, threshold)) == sorted(direct)


def test_the_aligner_thresholds_mtcnn_on_its_own_probability(mtcnn_aligner):
    canvas, _ = face_canvas(60, 3, seed=4)
    scores = [face.score for face, _ in mtcnn_aligner.detect(canvas, min_score=mtcnn_aligner.score_floor)]
    assert scores and all(s <= 1 for s in scores)
    assert all(s >= mtcnn_aligner.score_floor for s in scores)
    assert mtcnn_aligner.threshold == get_config().mtcnn_min_probability
    kept = mtcnn_aligner.detect(canvas, min_score=float(np.median(scores)))
    assert 0 < len(kept) < len(scores) or len(set(scores)) == 1
    with pytest.raises(ValueError, match="detector must be one of"):
        FaceAligner(_with(get_config(), detector="sift"))
    with pytest.raises(ValueError, match="below the cascade's O-Net floor"):
        FaceAligner(_with(get_config(), detector="mtcnn", mtcnn_min_probability=0.1))
    with pytest.raises(ValueError, match="RGB uint8"):
        mtcnn_aligner._mtcnn.detect(canvas[..., 0])


def _with(config, **values):
    config = config.copy_and_resolve_references()
    config.update(values)
    return config


def test_the_configured_box_map_and_threshold_are_the_benchmarks_measurements():
    summary_file = REPO / "results" / "detection" / "summary.json"
    if not summary_file.exists():
        pytest.skip("no detection benchmark yet: python scripts/bench_detection.py")
    summary = json.loads(summary_file.read_text())
    measured = summary.get("calibration_choice", {}).get("mtcnn_box_map")
    if measured is None:
        pytest.skip("the committed benchmark predates MTCNN: rerun scripts/bench_detection.py")
    assert list(get_config().mtcnn_box_map) == pytest.approx(measured, abs=5e-4)
    choices = [summary["threshold"], *summary["threshold"].get("alternatives", [])]
    by_setting = {ch["setting"]: ch["threshold"] for ch in choices}
    assert get_config().mtcnn_min_probability == by_setting["mtcnn"]
    assert get_config().min_detection_score == by_setting["upscale_2"]  # HOG's, for its default framing
    assert summary["threshold"]["setting"] == get_config().detector == "mtcnn"
