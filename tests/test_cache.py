"""The decoded-image cache on the synthetic folder: contents, row order, staleness, missing files."""

import json

import numpy as np
import pandas as pd
import pytest

from research.data import archive
from research.data.cache import build_cache, cache_dir, decode_resize, is_current, load_cache
from research.data.labels import parse_filename

SIZE = 32


def _split_csv(folder, path, seed=0):
    """A split file over the folder's images, rows in a shuffled (not name) order."""
    files = sorted(p.name for p in folder.iterdir())
    files = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
    labels = [parse_filename(f) for f in files]
    splits = (["train"] * 28 + ["val"] * 4 + ["test"] * 8)[:len(files)]
    pd.DataFrame({"file": files, "sha256": "", "age": [lab.age for lab in labels],
                  "gender": [lab.gender for lab in labels], "race": [lab.race for lab in labels],
                  "split": splits}).to_csv(path, index=False)
    return path


def _meta(split_csv, size=SIZE):
    return {"split_file": split_csv.name, "split_sha256": archive.sha256_file(split_csv), "size": size}


@pytest.fixture
def built(utk_folder, tmp_path):
    split_csv = _split_csv(utk_folder, tmp_path / "utkface.csv")
    out = build_cache(utk_folder, split_csv, SIZE, cache_dir(tmp_path / "cache", split_csv, SIZE), workers=2)
    return utk_folder, split_csv, out


def test_images_shape_dtype_and_row_order(built):
    folder, split_csv, out = built
    assert out.name == f"utkface_{SIZE}px"
    cached = load_cache(out)
    table = pd.read_csv(split_csv, keep_default_na=False)
    assert cached.images.shape == (len(table), SIZE, SIZE, 3) == (40, SIZE, SIZE, 3)
    assert cached.images.dtype == np.uint8
    pd.testing.assert_frame_equal(cached.table, table)
    assert list(pd.read_csv(out / "index.csv")["file"]) == list(table["file"])
    for row in (0, 17, 39):
        expected = decode_resize((folder / table["file"][row]).read_bytes(), SIZE)
        np.testing.assert_array_equal(cached.images[row], expected)
    # Rows differ from one another (not one image copied everywhere, not blank).
    assert len({cached.images[i].tobytes() for i in range(len(table))}) == len(table)
    assert cached.source_sha256 == archive.data_checksum(folder)


def test_split_rows_select_their_images(built):
    _, split_csv, out = built
    cached = load_cache(out)
    rows, table = cached.split("val")
    assert list(rows) == [28, 29, 30, 31]
    assert list(table["file"]) == list(cached.table["file"][28:32])


def test_decode_resize_returns_rgb_of_the_size(utk_folder):
    blob = next(utk_folder.iterdir()).read_bytes()
    for size in (32, 64, 200):
        array = decode_resize(blob, size)
        assert array.shape == (size, size, 3) and array.dtype == np.uint8


def test_is_current_until_the_split_changes(built):
    folder, split_csv, out = built
    assert is_current(out, _meta(split_csv))
    assert not is_current(out, _meta(split_csv, size=64))
    assert json.loads((out / "meta.json").read_text()) == _meta(split_csv)
    stamp = (out / "images.npy").stat().st_mtime_ns
    build_cache(folder, split_csv, SIZE, out)  # current: nothing rewritten
    assert (out / "images.npy").stat().st_mtime_ns == stamp

    table = pd.read_csv(split_csv, keep_default_na=False)
    table.iloc[:-5].to_csv(split_csv, index=False)
    assert not is_current(out, _meta(split_csv))
    build_cache(folder, split_csv, SIZE, out, workers=1)
    assert is_current(out, _meta(split_csv))
    assert load_cache(out).images.shape[0] == 35


def test_tarball_and_folder_give_the_same_cache(built, tmp_path, tarball_writer):
    folder, split_csv, out = built
    tarball = tarball_writer(folder, tmp_path / "UTKFace.tar.gz", order_seed=3)
    from_tar = build_cache(tarball, split_csv, SIZE, tmp_path / "from_tar", workers=1)
    np.testing.assert_array_equal(np.load(from_tar / "images.npy"), np.load(out / "images.npy"))


def test_file_missing_from_the_source_is_a_clear_error(utk_folder, tmp_path):
    split_csv = _split_csv(utk_folder, tmp_path / "utkface.csv")
    table = pd.read_csv(split_csv, keep_default_na=False)
    table.loc[3, "file"] = "99_0_0_20170116000000000.jpg.chip.jpg"
    table.to_csv(split_csv, index=False)
    out = tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match="1 files of .* are not in") as error:
        build_cache(utk_folder, split_csv, SIZE, out, workers=1)
    assert "99_0_0_20170116000000000.jpg.chip.jpg" in str(error.value)
    assert not (out / "images.npy").exists() and not is_current(out, _meta(split_csv))


def test_loading_a_cache_that_was_never_built_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no decoded-image cache at .*build_cache"):
        load_cache(tmp_path / "nothing_here")
