"""Finding the UTKFace data: a flag, an environment variable, then conventional places."""

from __future__ import annotations

import os
from pathlib import Path

from research.errors import UserError

ENV_VAR = "UTKFACE"
HOW_TO_GET = (
    "Download 'Aligned&Cropped Faces' (UTKFace.tar.gz, 23,708 images; non-commercial research "
    "use only) from https://susanqq.github.io/UTKFace/ and put it at data/raw/UTKFace.tar.gz "
    "(or extract it to data/raw/UTKFace/), or pass --data PATH, or set UTKFACE=PATH."
)


class DatasetNotFoundError(UserError, FileNotFoundError):
    """Raised when no UTKFace archive or folder is found; the message lists every place tried."""


def candidate_paths(project_root: Path) -> list[Path]:
    """Conventional places, in the order they are tried after --data and $UTKFACE."""
    return [
        project_root / "data/raw/UTKFace.tar.gz",
        project_root / "data/raw/UTKFace",
        project_root.parent / "shared/data/UTKFace.tar.gz",
    ]


def is_usable(path: Path) -> bool:
    """A tarball file, or a folder that holds .jpg files directly or in a UTKFace/ subfolder."""
    if path.is_file():
        return path.name.endswith((".tar.gz", ".tgz", ".tar"))
    if path.is_dir():
        return any(path.glob("*.jpg")) or any(path.glob("UTKFace/*.jpg"))
    return False


def locate_dataset(data: str | os.PathLike | None = None, project_root: Path | None = None) -> Path:
    """Return the UTKFace archive or folder to read.

    Order: the explicit ``data`` argument (--data), $UTKFACE, data/raw/UTKFace.tar.gz,
    data/raw/UTKFace/, ../shared/data/UTKFace.tar.gz. An explicit path that does not hold the
    dataset is an error rather than silently falling through to the next place.
    """
    root = Path(project_root) if project_root else Path.cwd()
    explicit = [("--data", data), (f"${ENV_VAR}", os.environ.get(ENV_VAR))]
    for source, value in explicit:
        if value:
            path = Path(value).expanduser()
            if is_usable(path):
                return path
            raise DatasetNotFoundError(
                f"{source} points at {path}, which is neither a UTKFace .tar.gz nor a folder of "
                f"UTKFace .jpg files. {HOW_TO_GET}"
            )
    tried = candidate_paths(root)
    for path in tried:
        if is_usable(path):
            return path
    looked = "; ".join(str(p) for p in ["--data (not given)", f"${ENV_VAR} (not set)", *tried])
    raise DatasetNotFoundError(f"UTKFace not found. Looked at: {looked}. {HOW_TO_GET}")


def locate_coral_split(coral_dir: str | os.PathLike | None = None,
                       project_root: Path | None = None) -> Path:
    """Folder with the CORAL ``utk_train.csv``/``utk_test.csv``: flag, data/raw, ../shared/data."""
    root = Path(project_root) if project_root else Path.cwd()
    tried = [Path(coral_dir)] if coral_dir else []
    tried += [root / "data/raw/coral_utkface", root.parent / "shared/data/splits/coral_utkface"]
    for path in tried:
        if (path / "utk_train.csv").is_file() and (path / "utk_test.csv").is_file():
            return path
    looked = "; ".join(str(p) for p in tried)
    raise DatasetNotFoundError(
        f"CORAL split files utk_train.csv/utk_test.csv not found. Looked at: {looked}. "
        "Get them from https://github.com/Raschka-research-group/coral-cnn (datasets/) and put "
        "them in data/raw/coral_utkface/, or pass --coral-dir.")
