"""Finding the data: --data, $UTKFACE, data/raw/UTKFace.tar.gz, data/raw/UTKFace/, ../shared/data."""

import pytest

from research.data.locate import (
    ENV_VAR,
    DatasetNotFoundError,
    locate_coral_split,
    locate_dataset,
)

URL = "https://susanqq.github.io/UTKFace/"


@pytest.fixture
def places(tmp_path, monkeypatch, utk_writer, tarball_writer):
    """A project root (tmp/project) with nothing in it yet, plus builders for each conventional place."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    root = tmp_path / "project"
    root.mkdir()
    folder = utk_writer(tmp_path / "source" / "UTKFace", count=2)
    tarball = tarball_writer(folder, tmp_path / "source.tar.gz")

    def make(kind):
        if kind == "raw_tar":
            path = root / "data/raw/UTKFace.tar.gz"
        elif kind == "raw_dir":
            path = root / "data/raw/UTKFace"
            utk_writer(path, count=2)
            return path
        elif kind == "shared_tar":
            path = tmp_path / "shared/data/UTKFace.tar.gz"
        else:
            raise KeyError(kind)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tarball.read_bytes())
        return path

    return root, make, folder, tarball


def test_search_order_each_step(places, monkeypatch):
    root, make, folder, tarball = places
    shared = make("shared_tar")
    assert locate_dataset(project_root=root) == shared
    raw_dir = make("raw_dir")
    assert locate_dataset(project_root=root) == raw_dir
    raw_tar = make("raw_tar")
    assert locate_dataset(project_root=root) == raw_tar
    monkeypatch.setenv(ENV_VAR, str(folder))
    assert locate_dataset(project_root=root) == folder
    assert locate_dataset(tarball, project_root=root) == tarball  # --data beats everything


def test_project_root_defaults_to_cwd(places, monkeypatch):
    root, make, _, _ = places
    raw_tar = make("raw_tar")
    monkeypatch.chdir(root)
    assert locate_dataset().resolve() == raw_tar.resolve()


def test_folder_with_nested_utkface_is_usable(places):
    _, _, folder, _ = places
    assert locate_dataset(folder.parent) == folder.parent  # source/UTKFace/*.jpg


def test_empty_raw_folder_is_skipped(places):
    root, make, _, _ = places
    (root / "data/raw/UTKFace").mkdir(parents=True)  # no images yet: not the dataset
    shared = make("shared_tar")
    assert locate_dataset(project_root=root) == shared


def test_not_found_names_every_place_and_the_url(places):
    root, _, _, _ = places
    with pytest.raises(DatasetNotFoundError) as error:
        locate_dataset(project_root=root)
    message = str(error.value)
    for place in ("--data (not given)", f"${ENV_VAR} (not set)", str(root / "data/raw/UTKFace.tar.gz"),
                  str(root / "data/raw/UTKFace"), str(root.parent / "shared/data/UTKFace.tar.gz"), URL):
        assert place in message
    assert isinstance(error.value, FileNotFoundError)


@pytest.mark.parametrize("bad", ["missing.tar.gz", "empty_dir", "notes.txt"])
def test_explicit_data_at_a_wrong_place_is_an_error(places, tmp_path, bad):
    root, make, _, _ = places
    make("raw_tar")  # a valid conventional place must not be used instead
    path = tmp_path / bad
    if bad == "empty_dir":
        path.mkdir()
    elif bad == "notes.txt":
        path.write_text("not data")
    with pytest.raises(DatasetNotFoundError, match="--data points at") as error:
        locate_dataset(path, project_root=root)
    assert str(path) in str(error.value) and URL in str(error.value)


def test_env_var_at_a_wrong_place_is_an_error(places, monkeypatch, tmp_path):
    root, make, _, _ = places
    make("raw_tar")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match=rf"\${ENV_VAR} points at"):
        locate_dataset(project_root=root)


def test_coral_split_search(tmp_path):
    root = tmp_path / "project"
    with pytest.raises(DatasetNotFoundError) as error:
        locate_coral_split(project_root=root)
    assert str(root / "data/raw/coral_utkface") in str(error.value)
    assert str(tmp_path / "shared/data/splits/coral_utkface") in str(error.value)
    shared = tmp_path / "shared/data/splits/coral_utkface"
    shared.mkdir(parents=True)
    (shared / "utk_train.csv").write_text("")
    with pytest.raises(DatasetNotFoundError):  # both files are needed
        locate_coral_split(project_root=root)
    (shared / "utk_test.csv").write_text("")
    assert locate_coral_split(project_root=root) == shared
    local = root / "data/raw/coral_utkface"
    local.mkdir(parents=True)
    for name in ("utk_train.csv", "utk_test.csv"):
        (local / name).write_text("")
    assert locate_coral_split(project_root=root) == local
    assert locate_coral_split(shared, project_root=root) == shared
