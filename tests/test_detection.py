"""Small-face detection, merging of two detectors' boxes, label placement and the start-up compile.

Faces come from skimage's astronaut (no dataset needed); the model is a tiny random release.
"""

import jax
import numpy as np
import pytest
from PIL import Image
from skimage import data

from research.configs import load_config
from research.configs.predict import DETECTOR_SETTINGS, detector_config, get_config
from research.models.factory import create_model
from research.predict import faces, mtcnn
from research.predict.annotate import annotate, label_layout, overlaps, place_labels
from research.predict.faces import FaceAligner, box_iou, detection_scale, merge_detections
from research.predict.pipeline import Predictor
from research.predict.release import Release

ASTRONAUT_FACE = (179, 83, 266, 170)  # dlib's box on the 512x512 astronaut


def face_canvas(width: int, count: int, size=(640, 480), seed: int = 0) -> tuple[np.ndarray, list]:
    """``count`` astronaut faces whose dlib box is ``width`` px wide on a noisy grey canvas;
    returns the canvas and the expected boxes."""
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(rng.integers(90, 170, (size[1], size[0], 3), dtype=np.uint8))
    box_w = ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0]
    margin = box_w // 2  # the crop keeps context around the box (hair, neck)
    crop = Image.fromarray(data.astronaut()).crop((ASTRONAUT_FACE[0] - margin, ASTRONAUT_FACE[1] - margin,
                                                   ASTRONAUT_FACE[2] + margin, ASTRONAUT_FACE[3] + margin))
    f = width / box_w
    side = round(crop.width * f)
    crop = crop.resize((side, side), Image.Resampling.BILINEAR)
    boxes, step = [], size[0] // count
    for i in range(count):
        x, y = i * step + (step - side) // 2, (size[1] - side) // 2
        canvas.paste(crop, (x, y))
        offset = round(margin * f)
        boxes.append((x + offset, y + offset, x + offset + width, y + offset + width))
    return np.asarray(canvas), boxes


def found_boxes(aligner: FaceAligner, canvas: np.ndarray, expected: list) -> int:
    boxes = [face.box for face, _ in aligner.detect(canvas)]
    return sum(any(box_iou(b, e) >= 0.3 for b in boxes) for e in expected)


@pytest.fixture(scope="module")
def default_aligner() -> FaceAligner:
    return FaceAligner(get_config())


def test_faces_of_40_px_are_all_found_by_default_and_not_at_the_peers_setting(default_aligner):
    canvas, expected = face_canvas(40, 5)
    assert found_boxes(default_aligner, canvas, expected) == 5
    assert found_boxes(default_aligner, *face_canvas(34, 5)) == 5  # "from about 36 px"
    assert found_boxes(FaceAligner(detector_config("no_upsampling")), canvas, expected) == 0
    big, expected_big = face_canvas(120, 3)
    assert found_boxes(default_aligner, big, expected_big) == 3  # large faces still found


def test_the_upscale_is_capped_for_large_photos():
    assert detection_scale(640, 480, 2.0, 4_000_000) == 2.0
    assert detection_scale(2000, 1500, 2.0, 4_000_000) == pytest.approx((4e6 / 3e6) ** 0.5)
    assert detection_scale(4000, 3000, 2.0, 4_000_000) == 1.0  # never below the image itself
    assert faces.min_face_width(2.0) == 30 and faces.min_face_width(1.0) == faces.HOG_MIN_FACE
    aligner = FaceAligner(get_config())
    assert aligner.scale_for(np.zeros((480, 640, 3), np.uint8)) == get_config().detector_upscale


def test_overlapping_detections_of_two_detectors_are_merged():
    assert box_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    assert box_iou((0, 0, 9, 9), (10, 10, 19, 19)) == 0.0
    assert box_iou((0, 0, 9, 9), (5, 0, 14, 9)) == pytest.approx(50 / 150)
    hog = [((100, 100, 179, 179), 1.2, "hog")]
    cnn = [((104, 98, 185, 181), 1.0, "cnn"),  # the same face, another box: dropped
           ((300, 100, 379, 179), 0.9, "cnn"),  # a face HOG missed: kept
           ((302, 104, 380, 182), 0.5, "cnn")]  # the same missed face twice: the best one kept
    merged = merge_detections(hog, cnn, 0.3)
    assert [m[0] for m in merged] == [(100, 100, 179, 179), (300, 100, 379, 179)]
    assert [m[2] for m in merged] == ["hog", "cnn"]


@pytest.mark.parametrize("first", ["hog", "mtcnn"])
def test_the_cnn_detector_finds_the_face_the_first_found_and_the_two_boxes_merge_into_one(monkeypatch, first):
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((384, 384)))
    config = detector_config("default_cnn")
    config.detector = first
    aligner = FaceAligner(config)
    assert len(aligner.cnn_boxes(photo)) == 1 and len(aligner.hog_boxes(photo, 0.3)) == 1
    (face, _), = aligner.detect(photo)
    assert face.detector == first
    assert faces.cnn_model_path().endswith("mmod_human_face_detector.dat")
    monkeypatch.setattr(faces, "CNN_PACKAGE", "no_such_cnn_package")
    with pytest.raises(FileNotFoundError, match="no_such_cnn_package"):
        faces.cnn_model_path()


def fake_face(box) -> dict:
    return {"box": list(box), "age": 54.0, "age_interval": [37.0, 70.0], "gender": "female",
            "gender_probability": 0.97, "challenge": {"decision": "no ID check"}}


def assert_layout_is_clean(rects, image):
    assert all(r is not None for r in rects)
    for r in rects:
        assert 0 <= r[0] < r[2] <= image[0] and 0 <= r[1] < r[3] <= image[1], (r, image)
    for i, a in enumerate(rects):
        assert not any(overlaps(a, b) for b in rects[i + 1:]), (a, rects)


@pytest.mark.parametrize("image, boxes", [
    ((640, 480), [(0, 0, 60, 60), (590, 2, 639, 50), (0, 420, 60, 479), (580, 430, 639, 479)]),  # corners
    ((640, 480), [(10 + 52 * i, 200 + 20 * (i % 2), 55 + 52 * i, 245 + 20 * (i % 2)) for i in range(12)]),
    ((4000, 3000), [(100 + 300 * i, 1000, 350 + 300 * i, 1250) for i in range(12)]),
    ((200, 150), [(5, 5, 60, 60), (120, 10, 190, 80)]),  # a thumbnail: the font shrinks, text breaks
])
def test_labels_lie_inside_the_image_and_over_no_other_label(image, boxes):
    font, texts, rects = label_layout([fake_face(b) for b in boxes], boxes, image)
    assert_layout_is_clean(rects, image)
    assert font.size >= 8 and (image[1] < 1000 or font.size >= 50)  # grows with the photo


def test_crowded_labels_are_stacked_and_a_photo_with_no_room_gets_a_legend():
    boxes = [(300, 200, 340, 240)] * 8  # eight labels wanting the same place
    rects = place_labels(boxes, [(200, 20)] * 8, (640, 480))
    assert_layout_is_clean(rects, (640, 480))
    assert place_labels([(0, 0, 10, 10)] * 3, [(100, 30)] * 3, (100, 60)) [2] is None  # no room left
    array = np.zeros((60, 100, 3), np.uint8)
    record = {"scale": 1.0, "faces": [fake_face((0, 0, 20, 20)), fake_face((30, 0, 50, 20)),
                                      fake_face((60, 0, 80, 20))] * 3}
    drawn = annotate(array, record)
    assert drawn.width == 100 and drawn.height > 60  # labels that found no room go below the photo


@pytest.fixture(scope="module")
def tiny_release() -> Release:
    """A randomly initialised smoke CNN as an in-memory release (no export needed here)."""
    config = load_config("cnn_baseline", "smoke")
    model = create_model(config.model)
    size = int(config.image_size)
    init = jax.jit(model.init, static_argnames="train")  # one compile, not one per op
    variables = init(jax.random.key(0), np.zeros((1, size, size, 3), np.float32), train=False)
    return Release(config=config, members=({"params": variables["params"],
                                            "batch_stats": variables.get("batch_stats", {})},),
                   weights=(1.0,), model=model, metadata={}, path=None)


def test_after_start_up_a_new_batch_size_compiles_nothing(tiny_release):
    config = get_config()
    config.batch_buckets = (1, 4)  # two compiles keep the test short; the command has four
    config.mtcnn_precompile_sizes = ((704, 528),)  # a size no other test runs (jit caches are shared)
    predictor = Predictor.from_release(tiny_release, config)
    estimator = predictor.estimator
    compiled = estimator.compiled_sizes()
    assert compiled == len(config.batch_buckets)
    chips = np.zeros((3, config.chip_size, config.chip_size, 3), np.uint8)  # 3 faces: the bucket of 4
    estimator.faces(chips, 25)
    estimator.faces(chips[:1], 25)
    assert estimator.compiled_sizes() == compiled
    # the detector too: a photo of a size compiled at start-up compiles nothing more, another size does
    from skimage import data as skdata

    detector = predictor.aligner._mtcnn
    shapes = detector.compiled_shapes()
    assert shapes >= len(mtcnn.BUCKETS["rnet"]) + len(mtcnn.BUCKETS["onet"])
    photo = np.asarray(Image.fromarray(skdata.astronaut()).resize(tuple(config.mtcnn_precompile_sizes[0])))
    assert predictor.predict_array(photo, 25)[0]  # the face is found
    assert detector.compiled_shapes() == shapes and estimator.compiled_sizes() == compiled
    predictor.predict_array(np.asarray(Image.fromarray(photo).resize((736, 552))), 25)
    assert detector.compiled_shapes() > shapes
    config.precompile = False
    lazy = Predictor.from_release(tiny_release, config).estimator
    assert lazy.compiled_sizes() == 0
    lazy.faces(chips, 25)
    assert lazy.compiled_sizes() == 1  # without start-up compiling, this photo would have paid for it


@pytest.mark.parametrize("tta_flip", [True, False])
def test_both_views_in_one_batch_give_the_two_pass_distributions(tiny_release, tta_flip):
    from research.inference import distribution_step
    from research.predict.estimate import views_step

    size = int(tiny_release.config.image_size)
    images = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), np.uint8)
    other = jax.tree_util.tree_map(lambda a: a * 0.9, tiny_release.members[0])  # a second member
    members, weights = (tiny_release.members[0], other), (0.7, 0.3)
    kwargs = dict(apply_fn=tiny_release.model.apply, tta_flip=tta_flip, weights=weights)
    ours = jax.device_get(views_step(members, images, **kwargs))
    reference = jax.device_get(distribution_step(members, images, **kwargs))
    assert set(ours) == set(reference)
    for key in reference:
        np.testing.assert_allclose(ours[key], reference[key], rtol=1e-4, atol=1e-6)
    flipped = jax.device_get(views_step(members, images[:, :, ::-1], **kwargs))
    if tta_flip:  # the mirror's distributions are the image's: the two views are averaged
        np.testing.assert_allclose(flipped["age_probs"], ours["age_probs"], rtol=1e-4, atol=1e-6)
    else:
        assert not np.allclose(flipped["age_probs"], ours["age_probs"], rtol=1e-4, atol=1e-6)


def test_the_latency_benchmark_times_each_model_variant_on_the_same_chips(tiny_release):
    from research.predict.estimate import AgeEstimator
    from research.release.bench import CONV_IMPLS, PASS_SIZES, model_variants, variant_rows

    estimator = AgeEstimator(tiny_release, get_config())
    variants = model_variants(estimator)
    assert [tuple(v.config.batch_buckets) for k, v in variants.items() if k.startswith("passes_of_")] == [
        (n,) for n in PASS_SIZES]
    impls = [v.release.model.conv_impl for k, v in variants.items() if k.startswith("conv_")]
    assert impls == list(CONV_IMPLS)
    assert estimator.config.batch_buckets == get_config().batch_buckets  # the command's left unchanged
    chips = np.zeros((4, 200, 200, 3), np.uint8)
    rows = variant_rows(estimator, chips, runs=1)
    assert [r["setting"] for r in rows] == list(variants)
    assert all(r["faces"] == 4 and r["measure"] == "chips_batch4" and r["faces_per_s"] > 0 for r in rows)


def test_paired_timings_interleave_the_contenders_in_rotating_order(monkeypatch):
    import types

    from research.release import bench

    calls, now = [], [0.0]
    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))

    def contender(name: str, seconds: float):
        def call():
            calls.append(name)
            now[0] += seconds
        return call
    fns = {"a": contender("a", 1.0), "b": contender("b", 2.0), "c": contender("c", 4.0)}
    seconds = bench.paired_timings(fns, runs=3, warmup=1)
    # one warm-up call each, then each run calls every one once, starting one further along
    assert calls == ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"]
    # each call's time is filed under its own name, whatever its place in the run
    assert {k: v.tolist() for k, v in seconds.items()} == {"a": [1.0] * 3, "b": [2.0] * 3, "c": [4.0] * 3}


def test_the_peer_settings_are_detector_settings():
    from research.release.bench import PEER_SETTINGS

    assert set(PEER_SETTINGS) <= set(DETECTOR_SETTINGS)


def test_the_peer_comparison_reuses_the_interleaved_photo_times(tiny_release, monkeypatch):
    from research.predict.pipeline import Predictor
    from research.release import bench

    measured = []
    monkeypatch.setattr(bench, "timings", lambda fn, runs, warmup: measured.append(fn) or np.full(runs, 0.5))
    monkeypatch.setattr(bench, "DETECTOR_SETTINGS", {"no_upsampling": {}, "upscale_2": {}})
    predictor = Predictor.from_release(tiny_release, get_config())
    given = {"no_upsampling": np.full(3, 0.25)}
    rows = bench.setting_rows(predictor, np.zeros((48, 64, 3), np.uint8), runs=3, warmup=0, cnn_runs=1,
                              photo_seconds=given)
    photo = {r["setting"]: r["p50_ms"] for r in rows if r["measure"] == "photo_640x480"}
    assert photo == {"no_upsampling": 250.0, "upscale_2": 500.0}
    assert len(measured) == 3  # upscale_2's photo, and both settings' detection, timed here
