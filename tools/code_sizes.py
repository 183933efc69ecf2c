#!/usr/bin/env python3
"""The sizes of the project's C++ sources: the longest files and the longest functions (lines from
a function's first line to its closing brace, as Universal Ctags reads them).

Usage: tools/code_sizes.py [--files N] [--functions N] [folders ...]   (default: src apps include)
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path


def sources(folders):
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.suffix in {".cpp", ".hpp", ".h"}:
                yield path


def functions(paths):
    """(length, name, path, first line) of every function ctags finds."""
    out = subprocess.run(["ctags", "--output-format=json", "--fields=+ne", "--c++-kinds=f", "-o", "-",
                          *map(str, paths)], check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        tag = json.loads(line)
        if tag.get("_type") == "tag" and tag.get("kind") == "function" and "end" in tag:
            yield tag["end"] - tag["line"] + 1, tag["name"], tag["path"], tag["line"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", default=["src", "apps", "include"])
    parser.add_argument("--files", type=int, default=15)
    parser.add_argument("--functions", type=int, default=15)
    args = parser.parse_args()
    paths = list(sources(args.folders))
    if not paths:
        sys.exit(f"error: no C++ sources under {' '.join(args.folders)}")
    sizes = sorted(((sum(1 for _ in p.open(encoding="utf-8")), p) for p in paths), reverse=True)
    print(f"{len(paths)} files, {sum(n for n, _ in sizes)} lines; "
          f"{sum(1 for n, _ in sizes if n > 400)} over 400 lines")
    print("longest files:")
    for n, p in sizes[:args.files]:
        print(f"  {n:6d}  {p}")
    print("longest functions:")
    for n, name, path, line in sorted(functions(paths), reverse=True)[:args.functions]:
        print(f"  {n:6d}  {name}  {path}:{line}")


if __name__ == "__main__":
    main()
