#!/usr/bin/env python3
"""Compares the outputs of two study folders: every table and view of sweeps/results.sqlite row
for row, linking/fit.json and sweeps/ground_truth.json (timings excepted), the pairs' manifest and
the linking network (tensors byte for byte, metadata as JSON). Timings are left out, and model
files are compared by name and fingerprint, not folder. Prints one line per output and exits 1 when any differs.

Usage: tools/compare_studies.py BEFORE AFTER [--ignore-identity-field NAME ...] [--ignore FILE ...]

--ignore-identity-field leaves out a field of the sweep's identity (meta table, key 'run') that is
expected to differ, e.g. 'linking' when the linking network is fingerprinted another way.
--ignore leaves out a file (relative to the study folder) that is expected to differ, e.g.
'sweeps/summary.json' of a resumed sweep, which counts the units it resumed.
"""
import argparse
import hashlib
import json
import math
import re
import sqlite3
import struct
import sys
from pathlib import Path

# Wall-clock figures and the memory a batch was measured to take differ from run to run.
TIMING_KEYS = {"seconds", "images_per_second", "batch_memory_per_image"}


def without_timings(value):
    """Leaves out timings, and keeps only the file name of model files (the two studies may use
    the same models from different folders; their fingerprints are compared)."""
    if isinstance(value, dict):
        return {k: (Path(v).name if k == "file" and isinstance(v, str) else without_timings(v))
                for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def same_value(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def table_rows(connection, name):
    rows = connection.execute(f'SELECT * FROM "{name}"').fetchall()
    return sorted(rows, key=lambda row: tuple((v is None, str(type(v)), v if v is not None else 0) for v in row))


def compare_databases(before, after, ignored_identity_fields):
    problems = []
    a, b = sqlite3.connect(f"file:{before}?mode=ro", uri=True), sqlite3.connect(f"file:{after}?mode=ro", uri=True)
    names = lambda c: sorted(r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"))
    if names(a) != names(b):
        problems.append(f"tables differ: {names(a)} vs {names(b)}")
    counts = []
    for name in sorted(set(names(a)) & set(names(b))):
        rows_a, rows_b = table_rows(a, name), table_rows(b, name)
        if name == "meta":
            rows_a, rows_b = [normalise_meta(r, ignored_identity_fields) for r in rows_a], [
                normalise_meta(r, ignored_identity_fields) for r in rows_b]
        if len(rows_a) != len(rows_b):
            problems.append(f"{name}: {len(rows_a)} rows vs {len(rows_b)}")
            continue
        differing = sum(1 for ra, rb in zip(rows_a, rows_b)
                        if len(ra) != len(rb) or not all(same_value(x, y) for x, y in zip(ra, rb)))
        if differing:
            problems.append(f"{name}: {differing} of {len(rows_a)} rows differ")
        counts.append(f"{name} {len(rows_a)}")
    return problems, counts


def normalise_meta(row, ignored_identity_fields):
    key, value = row
    if key != "run":
        return row
    identity = json.loads(value)
    for field in ignored_identity_fields:
        identity.pop(field, None)
    return (key, json.dumps(identity, sort_keys=True))


def compare_json(before, after, before_study, after_study):
    # Paths name each study's own folder.
    a = without_timings(json.loads(before.read_text().replace(str(before_study.resolve()), "<study>")
                                   .replace(str(before_study), "<study>")))
    b = without_timings(json.loads(after.read_text().replace(str(after_study.resolve()), "<study>")
                                   .replace(str(after_study), "<study>")))
    if a == b:
        return []
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)) if isinstance(a, dict) else []
    return [f"{before.name} differs" + (f" in {', '.join(keys)}" if keys else "")]


def compare_safetensors(before, after):
    """The tensors byte for byte, and the metadata as JSON (timings and model folders aside)."""
    def split(path):
        data = path.read_bytes()
        size = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + size])
        metadata = {k: json.loads(v) if v.startswith("{") else v
                    for k, v in header.pop("__metadata__", {}).items()}
        return header, without_timings(metadata), hashlib.sha256(data[8 + size:]).hexdigest()
    a, b = split(before), split(after)
    problems = []
    if a[0] != b[0] or a[2] != b[2]:
        problems.append("tensors differ")
    if a[1] != b[1]:
        problems.append("metadata differs")
    return problems


def compare_other_files(before, after, checked, ignored=frozenset()):
    """Every other file of the two studies: JSON as JSON (paths of each study aside), the rest byte
    for byte. Returns whether any differs."""
    names = lambda root: {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
                          and not p.name.endswith(("-wal", "-shm")) and str(p.relative_to(root)) not in ignored}
    a, b = names(before), names(after)
    problems = [f"only in one study: {n}" for n in sorted(a ^ b)]
    for name in sorted(a & b - checked):
        if name.endswith(".sqlite"):
            continue
        if name.endswith(".json"):
            problems += [f"{name}: {p}" for p in compare_json(before / name, after / name, before, after)]
        elif name.endswith(".toml"):
            # Model paths name the folder each study's models were taken from.
            text = lambda p: re.sub(r"(['\"])[^'\"]*/([^/'\"]+)\1", r"\1\2\1", p.read_text())
            if text(before / name) != text(after / name):
                problems.append(f"{name}: differs")
        elif (before / name).read_bytes() != (after / name).read_bytes():
            problems.append(f"{name}: bytes differ")
    print(f"{'DIFFERS' if problems else 'same':7s} every other file ({len(a & b - checked)} compared)"
          + "".join(f"\n        {p}" for p in problems))
    return bool(problems)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore-identity-field", action="append", default=[])
    parser.add_argument("--ignore", action="append", default=[])
    args = parser.parse_args()
    failed = False
    checks = [
        ("sweeps/results.sqlite", lambda a, b: compare_databases(a, b, args.ignore_identity_field)),
        ("linking/fit.json", lambda a, b: (compare_json(a, b, args.before, args.after), [])),
        ("sweeps/ground_truth.json", lambda a, b: (compare_json(a, b, args.before, args.after), [])),
        ("pairs/manifest.json", lambda a, b: (compare_json(a, b, args.before, args.after), [])),
        ("linking/linking.safetensors", lambda a, b: (compare_safetensors(a, b), [])),
    ]
    checked = {relative for relative, _ in checks}
    failed |= compare_other_files(args.before, args.after, checked, frozenset(args.ignore))
    for relative, compare in checks:
        a, b = args.before / relative, args.after / relative
        if not a.exists() and not b.exists():
            print(f"absent  {relative}: in both")
            continue
        if not a.exists() or not b.exists():
            print(f"MISSING {relative}: {'before' if not a.exists() else 'after'}")
            failed = True
            continue
        problems, details = compare(a, b)
        failed |= bool(problems)
        status = "DIFFERS" if problems else "same"
        print(f"{status:7s} {relative}" + (f" ({', '.join(details)})" if details else "")
              + "".join(f"\n        {p}" for p in problems))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
