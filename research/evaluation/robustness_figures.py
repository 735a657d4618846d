"""Figures of the corruption benchmark: MAE and mean signed error per corruption against severity,
and every corruption at one severity on a procedurally drawn face (no dataset image is shown)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFilter

from research.data.corruptions import CLEAN, CORRUPTIONS, SEVERITIES, corrupt, model_input

MARKERS = "osD^vP*Xh<>"
PANELS = (("age_mae", "age MAE (years)"), ("age_mean_signed_error", "mean signed error, pred - true (years)"))
SUPERSAMPLE = 4  # the face is drawn large and downscaled, for smooth edges


def plot_corruptions(table: pd.DataFrame, mae_limit: float, signed_limit: float) -> Figure:
    """Per model: age MAE and mean signed error of each corruption at severities 1-3, the clean
    value as a dashed line, and the issue's limits (MAE ``mae_limit`` x clean, +-``signed_limit``)."""
    models = list(dict.fromkeys(table["model"]))
    fig = Figure(figsize=(13, 4.6 * len(models)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(models), 2))
    colours = colormaps["tab20"]
    for row, model in enumerate(models):
        part = table[table["model"] == model]
        clean = part[part["corruption"] == CLEAN].iloc[0]
        corrupted = part[part["corruption"] != CLEAN].groupby("corruption", sort=False)
        for col, (column, label) in enumerate(PANELS):
            ax = axes[row, col]
            for i, (name, curve) in enumerate(corrupted):
                ax.plot(curve["severity"], curve[column], marker=MARKERS[i % len(MARKERS)], color=colours(i),
                        label=name)
            ax.axhline(clean[column], color="black", ls="--", lw=1.2, label=f"clean ({clean[column]:.2f})")
            if column == "age_mae":
                ax.axhline(mae_limit * clean[column], color="grey", ls=":", lw=1.2,
                           label=f"clean x {mae_limit:g}")
            else:
                ax.axhspan(-signed_limit, signed_limit, color="grey", alpha=0.12, label=f"+-{signed_limit:g}")
            ax.set(xticks=[1, 2, 3], xlabel="severity (1 mild, 2 middle, 3 strong)", ylabel=label,
                   title=f"{model}: {label.split(' (')[0]}")
            ax.grid(alpha=0.3)
        axes[row, 1].legend(fontsize=8.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    n = int(table["n"].iloc[0])
    fig.suptitle(f"Corruption benchmark on {n} test faces (the same faces in every condition)")
    return fig


def procedural_face(size: int = 200, seed: int = 0) -> np.ndarray:
    """A cartoon face drawn from ellipses and lines (skin texture, hair strands and a patterned
    shirt give the fine detail that blur, JPEG and downscaling remove): uint8 ``size`` square."""
    rng = np.random.default_rng(seed)
    big = size * SUPERSAMPLE

    def box(x0, y0, x1, y1):
        return [round(v * big) for v in (x0, y0, x1, y1)]

    image = Image.new("RGB", (big, big), (96, 128, 160))
    draw = ImageDraw.Draw(image)
    for y in range(0, big, SUPERSAMPLE * 2):  # a vertical gradient in the background
        shade = int(60 * y / big)
        draw.rectangle([0, y, big, y + SUPERSAMPLE * 2],
                       fill=(96 + shade // 2, 128 + shade // 3, 160 - shade))
    draw.ellipse(box(0.12, 0.78, 0.88, 1.3), fill=(40, 70, 120))  # shoulders
    for x in np.linspace(0.15, 0.85, 15):  # the shirt's stripes
        draw.line(box(x, 0.8, x, 1.0), fill=(220, 220, 230), width=SUPERSAMPLE)
    draw.rectangle(box(0.42, 0.62, 0.58, 0.85), fill=(205, 160, 130))  # neck
    draw.ellipse(box(0.24, 0.12, 0.76, 0.78), fill=(222, 178, 148))  # face
    draw.chord(box(0.2, 0.04, 0.8, 0.5), 180, 360, fill=(70, 45, 30))  # hair
    for _ in range(140):  # hair strands
        x = rng.uniform(0.24, 0.76)
        draw.line(box(x, rng.uniform(0.06, 0.14), x + rng.uniform(-0.03, 0.03), 0.27), fill=(40, 25, 15),
                  width=SUPERSAMPLE // 2)
    for cx in (0.39, 0.61):
        draw.ellipse(box(cx - 0.06, 0.4, cx + 0.06, 0.46), fill=(250, 250, 250))  # eyes
        draw.ellipse(box(cx - 0.025, 0.405, cx + 0.025, 0.455), fill=(70, 110, 60))
        draw.ellipse(box(cx - 0.01, 0.42, cx + 0.01, 0.44), fill=(10, 10, 10))
        draw.line(box(cx - 0.07, 0.36, cx + 0.06, 0.35), fill=(60, 40, 25), width=3 * SUPERSAMPLE)  # brows
    draw.line(box(0.5, 0.45, 0.48, 0.56), fill=(180, 130, 105), width=2 * SUPERSAMPLE)  # nose
    draw.line(box(0.48, 0.56, 0.53, 0.56), fill=(180, 130, 105), width=2 * SUPERSAMPLE)
    draw.arc(box(0.4, 0.56, 0.6, 0.68), 20, 160, fill=(170, 70, 70), width=3 * SUPERSAMPLE)  # mouth
    small = image.filter(ImageFilter.GaussianBlur(SUPERSAMPLE / 3))
    small = small.resize((size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(small, np.float64) + rng.normal(0, 3, (size, size, 1))  # skin-like grain
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def plot_sample_grid(face: np.ndarray, severity: int, seed: int, input_size: int) -> Figure:
    """The face clean and under every corruption at ``severity``, each as a model sees it at
    ``input_size`` px (corrupted at the face's own size, then resized)."""
    names = [CLEAN, *CORRUPTIONS]
    cols = 4
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(2.6 * cols, 2.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols).ravel()
    for ax, name in zip(axes, [*names, *[None] * (rows * cols - len(names))], strict=True):
        ax.axis("off")
        if name is None:
            continue
        image = face if name == CLEAN else corrupt(face, name, severity, seed, "procedural_face")
        ax.imshow(model_input(image, input_size), interpolation="nearest")
        ax.set_title(name if name == CLEAN else f"{name} ({SEVERITIES[name][severity - 1]:g})", fontsize=10)
    fig.suptitle(f"Every corruption at severity {severity} on a procedurally drawn face (no dataset image), "
                 f"at the model's {input_size} px input", fontsize=11)
    return fig
