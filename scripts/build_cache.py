"""Decode a protocol's images once into a uint8 cache (and report images/s).

    python scripts/build_cache.py --split results/splits/utkface.csv --size 64 [--data PATH]
"""

import argparse
import time
from pathlib import Path

from research.data import cache, locate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--data", help="UTKFace.tar.gz or extracted folder")
    parser.add_argument("--split", type=Path, default=Path("results/splits/utkface.csv"))
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--cache-root", type=Path, default=Path("data/cache"))
    parser.add_argument("--workers", type=int, default=0, help="decode processes (0: one per core)")
    args = parser.parse_args()
    source = locate.locate_dataset(args.data)
    out = cache.cache_dir(args.cache_root, args.split, args.size)
    start = time.time()
    cache.build_cache(source, args.split, args.size, out, workers=args.workers)
    n = len(cache.load_cache(out).table)
    seconds = time.time() - start
    print(f"{out}: {n} images at {args.size}px in {seconds:.1f} s ({n / seconds:.0f} images/s)")


if __name__ == "__main__":
    main()
