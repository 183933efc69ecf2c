#!/usr/bin/python3
"""Agreement of two sweeps' unit labels (e.g. two tuning seeds of one study): Cohen's kappa.

Usage: tools/label_kappa.py <results.sqlite> <results.sqlite>

Prints one line: the share of the units both databases hold whose labels are equal ("none"
counting as a label of its own), the share expected by chance from each database's label
frequencies, and kappa; then the same over the units both label.
"""
import sqlite3
import sys
from collections import Counter


def labels(path):
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return dict(db.execute("SELECT unit, label FROM units"))
    except sqlite3.Error as error:
        sys.exit(f"{path}: {error}")


def kappa(pairs):
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    first, second = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(first[k] * second[k] for k in first) / n / n
    return observed, expected, (observed - expected) / (1 - expected) if expected < 1 else float("nan")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    a, b = labels(sys.argv[1]), labels(sys.argv[2])
    units = sorted(set(a) & set(b))
    if not units:
        sys.exit(f"{sys.argv[1]} and {sys.argv[2]} share no swept unit")
    observed, expected, k = kappa([(a[u], b[u]) for u in units])
    line = f"labels agree on {observed:.1%} of {len(units)} units (chance {expected:.1%}), kappa {k:.2f}"
    both = [(a[u], b[u]) for u in units if a[u] != "none" and b[u] != "none"]
    if both:
        observed, expected, k = kappa(both)
        line += f"; on the {len(both)} units both label: {observed:.1%} (chance {expected:.1%}), kappa {k:.2f}"
    print(line)


if __name__ == "__main__":
    main()
