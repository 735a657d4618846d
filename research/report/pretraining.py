"""The pretrained backbones' section: each fine-tuned backbone beside the same network from random
weights (results/summary/pretraining.csv, written by scripts/results_table.py), what pretraining
changed, and the runs' loss curves."""

from __future__ import annotations

from IPython.display import Markdown

from research.configs import experiments
from research.report.results import Results, blocks, not_yet, num, paragraph, table

TABLE = "summary/pretraining.csv"
SHOWN = ["architecture", "initialisation", "age_MAE", "gender_acc_%", "ethnicity_acc_%", "C25_13-17_at_25+_%",
         "C25_adults_25+_asked_%", "input_px", "params_M", "GFLOPs_per_face", "epochs", "train_minutes",
         "device"]


def pretraining_effects(results: Results, pairs: dict[str, str] = experiments.PRETRAINED_RUNS) -> list[dict]:
    """For each pretrained run whose control is also scored: test age MAE and gender accuracy of both."""
    effects = []
    for pretrained, control in pairs.items():
        files = [f"runs/{name}/metrics_test.json" for name in (pretrained, control)]
        if not all(results.exists(f) for f in files):
            continue
        mine, theirs = (results.json(f) for f in files)
        effects.append({"run": pretrained, "control": control, "mae": mine["age_mae"],
                        "control_mae": theirs["age_mae"], "gender": mine["gender_accuracy"],
                        "control_gender": theirs["gender_accuracy"]})
    return effects


def continuation_sentences(results: Results, runs: dict = experiments.RUNS) -> list[str]:
    """For each scored run that continues another's release (``init_from``, a folder named after
    its run): how many more epochs, and its test metrics beside those of the run it continued."""
    sentences = []
    for name, entry in runs.items():
        parent = entry.init_from.rstrip("/").rsplit("/", 1)[-1] if entry.init_from else ""
        files = [f"runs/{n}/metrics_test.json" for n in (name, parent)]
        if not parent or not all(results.exists(f) for f in files):
            continue
        mine, theirs = (results.json(f) for f in files)
        epochs = results.json(f"runs/{name}/summary.json")["epochs"]
        pct = {k: (num(100 * theirs[k], 1), num(100 * mine[k], 1))
               for k in ("gender_accuracy", "ethnicity_accuracy")}
        sentences.append(
            f"{name} continues {parent} from its export for {epochs} more epochs: test age MAE "
            f"{num(theirs['age_mae'], 2)} to {num(mine['age_mae'], 2)} years, gender accuracy "
            f"{pct['gender_accuracy'][0]}% to {pct['gender_accuracy'][1]}%, ethnicity "
            f"{pct['ethnicity_accuracy'][0]}% to {pct['ethnicity_accuracy'][1]}%.")
    return sentences


def distillation_sentences(results: Results, runs: dict = experiments.RUNS,
                           controls: dict[str, str] = experiments.DISTILLATION_CONTROLS) -> list[str]:
    """For each scored distilled run (``distill_from``): its teachers and, where it has an
    undistilled control that is scored too, both runs' validation and test age MAE."""
    sentences = []
    for name, entry in runs.items():
        if not entry.distill_from or not results.exists(f"runs/{name}/metrics_test.json"):
            continue
        teachers = [t.rstrip("/").rsplit("/", 1)[-1] for t in entry.distill_from]
        listed = " and ".join([", ".join(teachers[:-1]), teachers[-1]] if len(teachers) > 1 else teachers)
        text = (f"{name} is distilled: {num(100 * entry.distill_alpha, 0)}% of each head's training target "
                f"is the mean prediction of {listed} on that image.")
        control = controls.get(name)
        pair = (name, control)
        if control and all(results.exists(f"runs/{n}/{f}") for n in pair
                           for f in ("metrics_test.json", "summary.json")):
            test = {n: results.json(f"runs/{n}/metrics_test.json") for n in pair}
            val = {n: results.json(f"runs/{n}/summary.json")["best_val"]["age_mae"] for n in pair}
            text += (f" Against {control}, the same start, rates, seed and schedule without teachers: "
                     f"validation age MAE {num(val[name], 2)} against {num(val[control], 2)} years, test "
                     f"{num(test[name]['age_mae'], 2)} against {num(test[control]['age_mae'], 2)}, gender "
                     f"accuracy {num(100 * test[name]['gender_accuracy'], 1)}% against "
                     f"{num(100 * test[control]['gender_accuracy'], 1)}%.")
        sentences.append(text)
    return sentences


def _effect_sentence(effect: dict, names: dict[str, str]) -> str:
    change = effect["control_mae"] - effect["mae"]
    direction = "lower" if change > 0 else "raise"
    return (f"On {names[effect['run']]}, the pretrained weights {direction} the test age MAE from "
            f"{num(effect['control_mae'], 2)} to {num(effect['mae'], 2)} years ({num(abs(change), 2)} "
            f"years) and move gender accuracy from {num(100 * effect['control_gender'], 1)}% to "
            f"{num(100 * effect['gender'], 1)}%.")


def pretraining_section(results: Results) -> Markdown:
    """The table of architecture x initialisation, generated sentences on the effect of pretraining,
    and the pretrained runs' loss curves."""
    if not results.exists(TABLE):
        return not_yet("make readme")
    frame = results.csv(TABLE)
    if "run" not in frame.columns:
        return not_yet("make all (the pretrained runs and their controls are not trained yet)")
    names = {row.run: f"{row.architecture}" for row in frame.itertuples()}
    sentences = [_effect_sentence(e, names) for e in pretraining_effects(results)]
    sentences += continuation_sentences(results) + distillation_sentences(results)
    missing = [c for p, c in experiments.PRETRAINED_RUNS.items() if p in names and c not in names]
    if missing:
        sentences.append(f"Not yet trained: {', '.join(missing)} (the from-scratch control"
                         f"{'s' * (len(missing) > 1)}), so the effect of pretraining on "
                         f"{'these networks' if len(missing) > 1 else 'that network'} is not measured yet.")
    trained = frame[frame["run"].isin([*experiments.PRETRAINED_RUNS, *experiments.PRETRAINED_RUNS.values()])]
    pretrained = trained[trained["pretrained on (licence)"] != "-"].drop_duplicates("pretrained on (licence)")
    data = "; ".join(f"{row['architecture']} from {row['initialisation']}: {row['pretrained on (licence)']}"
                     for row in pretrained.to_dict("records"))
    shown = frame[["run", *[c for c in SHOWN if c in frame.columns]]]
    figures = [results.figure(f"runs/{row.run}/loss_curves.png",
                              f"Loss curves of {row.run} ({row.architecture}, {row.initialisation} "
                              f"initialisation, {row.input_px} px, {row.epochs} epochs on {row.device}).",
                              f"loss-{row.run.replace('_', '-')}", width="80%")
               for row in trained.itertuples()]
    return blocks(
        table(shown, "Pretrained backbones and their from-scratch controls on the utkface test split "
                     "(95% bootstrap intervals; GFLOPs per face as evaluated, with flip averaging).",
              "pretraining"),
        paragraph(" ".join(sentences)),
        paragraph(f"Pretraining data and licences: {data}.") if data else None,
        *figures,
    )
