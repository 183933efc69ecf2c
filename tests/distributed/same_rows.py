"""Compares two results databases table by table, row by row in insertion order (primary key
order for the tables without rowid).

Usage: same_rows.py <reference.sqlite> <other.sqlite> [table ...]
With tables named, only those; else every table. Prints the first difference and exits 1.
"""
import sqlite3
import sys


def rows(path, table):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            return db.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
        except sqlite3.OperationalError:
            # A WITHOUT ROWID table keeps its rows in primary key order.
            return db.execute(f'SELECT * FROM "{table}"').fetchall()
    finally:
        db.close()


def tables(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    finally:
        db.close()


def main():
    reference, other = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or tables(reference)
    if not sys.argv[3:] and tables(other) != names:
        print(f"tables differ: {names} vs {tables(other)}")
        return 1
    total = 0
    for table in names:
        a, b = rows(reference, table), rows(other, table)
        if len(a) != len(b):
            print(f"{table}: {len(a)} rows in {reference}, {len(b)} in {other}")
            return 1
        for i, (x, y) in enumerate(zip(a, b)):
            # repr keeps every bit of a REAL (and NaN equals NaN here).
            if repr(x) != repr(y):
                print(f"{table} row {i}: {x!r} != {y!r}")
                return 1
        total += len(a)
    print(f"same rows: {len(names)} tables, {total} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
