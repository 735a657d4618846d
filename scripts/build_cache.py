"""Decode a protocol's images once into a uint8 cache (and report images/s).

    python scripts/build_cache.py --split results/splits/utkface.csv --size 64 [--data PATH]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from research.data import archive, cache, locate
from research.errors import cli
from research.outputs import write_csv, write_json
from research.provenance import provenance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace.tar.gz or extracted folder")
    parser.add_argument("--split", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--cache-root", type=Path, default=Path("data/cache"))
    parser.add_argument("--workers", type=int, default=0, help="decode threads (0: one per core)")
    parser.add_argument("--bench", action="store_true",
                        help="build afresh in a temporary folder at 64 and 128 px and write "
                        "results/bench/cache_build.csv")
    args = parser.parse_args()
    source = locate.locate_dataset(args.data)
    if args.bench:
        rows = []
        for size in (64, 128):
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(timed_build(source, args.split, size, Path(tmp), args.workers))
            print(rows[-1])
        write_csv(Path("results/bench/cache_build.csv"), pd.DataFrame(rows))
        write_json(Path("results/bench/cache_build.json"), {
            "provenance": provenance(data_sha256=archive.data_checksum(source)), "cpu_count": os.cpu_count()})
        return
    out = cache.cache_dir(args.cache_root, args.split, args.size)
    print(timed_build(source, args.split, args.size, out, args.workers))


def timed_build(source: Path, split: Path, size: int, out: Path, workers: int) -> dict:
    start = time.time()
    cache.build_cache(source, split, size, out, workers=workers)
    seconds = time.time() - start
    n = len(cache.load_cache(out).table)
    return {"split": split.name, "image_size": size, "images": n, "seconds": round(seconds, 2),
            "images_per_s": round(n / seconds, 1), "workers": workers or os.cpu_count()}


if __name__ == "__main__":
    cli(main)()
