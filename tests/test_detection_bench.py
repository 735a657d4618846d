"""The detection benchmark's threshold sweep: scoring, the choice on validation, and the claim that
filtering one low-threshold pass equals running the detector at the higher threshold."""

import numpy as np
import pandas as pd
import pytest
from test_detection import face_canvas

from research.configs.predict import get_config
from research.predict.faces import FaceAligner
from research.release.detection_bench import at_threshold, choose_threshold, match, sweep_table


def test_match_pairs_each_face_with_at_most_one_detection():
    faces = [((0, 0, 10, 10), 10), ((50, 50, 90, 90), 40)]
    found = [(1, 1, 10, 10), (0, 0, 11, 11), (200, 200, 220, 220)]  # two on the first face, one on none
    hit, false = match(found, faces, 0.3)
    assert hit == [True, False]
    assert false == 2  # the second box on face 0 and the box on nothing


def test_sweep_recall_and_false_detections_by_hand():
    faces = [((0, 0, 49, 49), 50), ((100, 0, 129, 29), 30), ((200, 0, 259, 59), 60)]
    records = [{"setting": "s", "faces": faces,
                "found": [((0, 0, 49, 49), 0.5), ((200, 0, 259, 59), -0.1), ((400, 400, 440, 440), 0.05)]},
               {"setting": "s", "faces": faces[:1], "found": []}]
    table = sweep_table(records, {"s": np.array([-0.2, 0.0, 0.3])}, iou=0.3, from_width=40)
    table = table.set_index("threshold")
    # Faces 40 px and wider: three (two on the first canvas, one on the second); the 30 px face is left out.
    assert (table["faces"] == 3).all()
    assert table.loc[-0.2, "found"] == 2 and table.loc[0.0, "found"] == 1 and table.loc[0.3, "found"] == 1
    assert table.loc[-0.2, "false_per_canvas"] == pytest.approx(0.5)  # the box on no face, 1 of 2 canvases
    assert table.loc[0.3, "false_per_canvas"] == 0.0
    assert table.loc[0.3, "recall"] == pytest.approx(1 / 3)


def test_the_lowest_threshold_within_the_false_target_is_chosen():
    sweep = pd.DataFrame({"setting": "s", "threshold": [-0.2, 0.0, 0.2, 0.4],
                          "recall": [0.99, 0.97, 0.93, 0.90], "false_per_canvas": [0.2, 0.04, 0.01, 0.0]})
    assert choose_threshold(sweep, "s", 0.05) == {"setting": "s", "threshold": 0.0, "recall": 0.97,
                                                  "false_per_canvas": 0.04, "within_target": True,
                                                  "at_sweep_floor": False}
    assert choose_threshold(sweep.assign(false_per_canvas=0.0), "s", 0.05)["at_sweep_floor"]
    # of thresholds finding as many faces within the target, the highest (fewer false detections)
    tied = choose_threshold(sweep.assign(recall=[0.99, 0.99, 0.99, 0.90]), "s", 0.05)
    assert (tied["threshold"], tied["false_per_canvas"], tied["at_sweep_floor"]) == (0.2, 0.01, False)
    none = choose_threshold(sweep.assign(false_per_canvas=1.0), "s", 0.05)
    assert none["threshold"] == 0.4 and not none["within_target"]


def test_filtering_a_low_threshold_pass_equals_detecting_at_the_threshold():
    aligner = FaceAligner(get_config())
    canvas, _ = face_canvas(44, 4, seed=3)
    low = [(face.box, face.score) for face, _ in aligner.detect(canvas, min_score=-0.4)]
    assert len(low) >= 4
    for threshold in (-0.2, 0.0, 0.3, 0.6):
        direct = [(face.box, face.score) for face, _ in aligner.detect(canvas, min_score=threshold)]
        assert sorted(at_threshold(low, threshold)) == sorted(direct)


def test_the_setting_that_finds_most_within_the_target_is_chosen_and_ties_go_to_the_first():
    from research.release.detection_bench import choose_setting

    sweep = pd.DataFrame({"setting": ["gray"] * 2 + ["rgb"] * 2, "threshold": [0.0, 0.1, 0.0, 0.1],
                          "recall": [0.95, 0.92, 0.96, 0.93], "false_per_canvas": [0.08, 0.04, 0.06, 0.05]})
    chosen = choose_setting(sweep, ("gray", "rgb"), 0.05)
    assert (chosen["setting"], chosen["threshold"], chosen["recall"]) == ("rgb", 0.1, 0.93)
    assert [a["setting"] for a in chosen["alternatives"]] == ["gray"]
    tie = choose_setting(sweep.assign(recall=0.9), ("gray", "rgb"), 0.05)
    assert tie["setting"] == "gray"
    assert choose_setting(sweep, ("gray", "rgb"), 0.05, margin=0.01)["setting"] == "gray"  # 0.92 vs 0.93
    assert choose_setting(sweep, ("gray", "rgb"), 0.05, margin=0.005)["setting"] == "rgb"
