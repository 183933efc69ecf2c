#!/usr/bin/env python3
"""Checks that includes run only down the library's layers: every #include "..." of a file in
src/ or include/linkstyle/ names a file of the same layer or a lower one. The layers, lowest
first, are the numbered list under "## Layers" in docs/architecture.md, one line each:

    N. **name**: pattern, pattern, ...

A pattern matches a file's path below src/ or include/linkstyle/ without its extension
(fnmatch: `tensor_io*` matches tensor_io and tensor_io/npy); the longest matching pattern decides.
Every file must be in a layer. Prints each include that runs up (and each file in no layer or in two) and exits 1 if any.

Usage: tools/check_layers.py [repository root]   (default: the folder above tools/)
"""
import fnmatch
import re
import sys
from pathlib import Path


def read_layers(doc):
    text = doc.read_text(encoding="utf-8")
    section = re.search(r"^## Layers\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not section:
        sys.exit(f"error: {doc}: no '## Layers' section")
    layers = []
    for match in re.finditer(r"^\d+\. \*\*([^*]+)\*\*: (.+)$", section.group(1), re.M):
        layers.append((match.group(1), [p.strip().strip("`") for p in match.group(2).split(",")]))
    if not layers:
        sys.exit(f"error: {doc}: the Layers section lists no layer")
    return layers


def component(path, root):
    relative = path.relative_to(root)
    parts = relative.parts
    if parts[:2] == ("include", "linkstyle"):
        relative = Path(*parts[2:])
    elif parts[0] == "src":
        relative = Path(*parts[1:])
    return str(relative.with_suffix(""))


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    layers = read_layers(root / "docs" / "architecture.md")
    files = sorted(p for folder in ("src", "include/linkstyle") for p in (root / folder).rglob("*")
                   if p.suffix in {".cpp", ".hpp"})
    problems = []

    def layer_of(name):
        # The most specific pattern decides (results/sqlite_database before results/*).
        matches = [(len(p), i) for i, (_, patterns) in enumerate(layers) for p in patterns if fnmatch.fnmatch(name, p)]
        if not matches:
            problems.append(f"{name}: in no layer")
            return None
        best = max(length for length, _ in matches)
        found = sorted({i for length, i in matches if length == best})
        if len(found) > 1:
            problems.append(f"{name}: in layers {', '.join(layers[i][0] for i in found)}")
            return None
        return found[0]

    levels = {component(p, root): None for p in files}
    for name in levels:
        levels[name] = layer_of(name)
    edges = 0
    for path in files:
        source = component(path, root)
        for include in re.findall(r'^#include "([^"]+)"', path.read_text(encoding="utf-8"), re.M):
            if include.startswith("linkstyle/"):
                target_path = root / "include" / include
            else:
                target_path = (path.parent / include) if (path.parent / include).exists() else root / "src" / include
            if not target_path.exists():
                continue  # generated at build time (e.g. the embedded assets)
            target = component(target_path.resolve(), root)
            if target == source or levels.get(source) is None or levels.get(target) is None:
                continue
            edges += 1
            if levels[target] > levels[source]:
                problems.append(f"{path.relative_to(root)}: includes {include} ({layers[levels[target]][0]}), "
                                f"above its own layer ({layers[levels[source]][0]})")
    for problem in problems:
        print(problem)
    print(f"layers: {len(files)} files, {edges} includes between components, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
