"""Reading UTKFace image bytes from the official tarball or an extracted folder."""

from __future__ import annotations

import contextlib
import hashlib
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from research.errors import UserError

# What the official archive's bytes hash to (README, "Get the data").
ARCHIVE_SHA256 = "8869054e26ecdd0f193e0b0021bee9325947c00a5949b272d97c26ff61ba40c4"


class ArchiveError(UserError):
    """The UTKFace archive cannot be read to its end: truncated or corrupt."""


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn gzip/tar failures part-way through the archive into an ArchiveError naming the file."""
    try:
        yield
    except (EOFError, tarfile.ReadError, zlib.error, OSError) as error:
        if isinstance(error, OSError) and not isinstance(error, tarfile.ReadError) and error.errno:
            raise  # a real I/O error (permissions, disk), not a broken archive
        raise ArchiveError(
            f"{path} is truncated or corrupt ({type(error).__name__}: {error}); the official archive's "
            f"sha256 is {ARCHIVE_SHA256} (README, 'Get the data'): download it again") from error


def _folder_root(path: Path) -> Path:
    nested = path / "UTKFace"
    return nested if nested.is_dir() and not any(path.glob("*.jpg")) else path


def count_files(path: Path) -> int:
    """Number of regular files the archive or folder holds (for progress bars)."""
    if path.is_dir():
        return sum(1 for p in _folder_root(path).iterdir() if p.is_file())
    with reading(path), tarfile.open(path) as tar:
        return sum(1 for m in tar if m.isfile())


def iter_files(path: Path, only: Iterable[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """Yield ``(file name, bytes)`` for every regular file, in archive (or sorted folder) order.

    ``only`` restricts the output to those base names, which saves decoding work for callers
    that need a subset. Names are base names without the ``UTKFace/`` prefix.
    """
    wanted = set(only) if only is not None else None
    if path.is_dir():
        for file in sorted(_folder_root(path).iterdir()):
            if file.is_file() and (wanted is None or file.name in wanted):
                yield file.name, file.read_bytes()
        return
    with reading(path), tarfile.open(path) as tar:
        for member in tar:
            name = member.name.rsplit("/", 1)[-1]
            if member.isfile() and (wanted is None or name in wanted):
                handle = tar.extractfile(member)
                yield name, handle.read() if handle else b""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def data_checksum(path: Path) -> str:
    """Checksum that identifies the data: the archive's sha256, or a hash over a folder's files."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for name, blob in iter_files(path):  # a folder: a hash over its files
        digest.update(name.encode() + b"\0" + hashlib.sha256(blob).digest())
    return digest.hexdigest()
