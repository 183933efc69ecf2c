#!/usr/bin/env python3
"""Compares the outputs of two study folders: every table and view of sweeps/results.sqlite row
for row, linking/fit.json and sweeps/ground_truth.json (timings excepted), the pairs' manifest and
the linking network's bytes. Prints one line per output and exits 1 when any differs.

Usage: tools/compare_studies.py BEFORE AFTER [--ignore-identity-field NAME ...]

--ignore-identity-field leaves out a field of the sweep's identity (meta table, key 'run') that is
expected to differ, e.g. 'linking' when the linking network is fingerprinted another way.
"""
import argparse
import hashlib
import json
import math
import sqlite3
import sys
from pathlib import Path

TIMING_KEYS = {"seconds"}  # wall-clock figures differ from run to run


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in TIMING_KEYS}
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


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore-identity-field", action="append", default=[])
    args = parser.parse_args()
    failed = False
    checks = [
        ("sweeps/results.sqlite", lambda a, b: compare_databases(a, b, args.ignore_identity_field)),
        ("linking/fit.json", lambda a, b: (compare_json(a, b, args.before, args.after), [])),
        ("sweeps/ground_truth.json", lambda a, b: (compare_json(a, b, args.before, args.after), [])),
        ("pairs/manifest.json", lambda a, b: (compare_json(a, b, args.before, args.after), [])),
        ("linking/linking.safetensors", lambda a, b: ([] if digest(a) == digest(b) else ["bytes differ"], [])),
    ]
    for relative, compare in checks:
        a, b = args.before / relative, args.after / relative
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
