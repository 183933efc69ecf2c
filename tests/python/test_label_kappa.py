"""Tests of tools/label_kappa.py on two small databases with hand-computed agreement."""

import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "label_kappa.py")


def database(folder: str, name: str, labels: list) -> str:
    path = os.path.join(folder, name)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE units (unit INTEGER PRIMARY KEY, label TEXT)")
        db.executemany("INSERT INTO units VALUES (?, ?)", enumerate(labels))
    return path


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOOL, *arguments], capture_output=True, text=True, timeout=60)


class LabelKappa(unittest.TestCase):
    def test_kappa_of_two_label_lists(self):
        with tempfile.TemporaryDirectory() as folder:
            a = database(folder, "a.sqlite", ["cap hue +", "none", "none", "wing area +"])
            b = database(folder, "b.sqlite", ["cap hue +", "none", "wing area +", "wing area +"])
            result = run(a, b)
            self.assertEqual(result.returncode, 0, result.stderr)
            # Observed 3/4. Chance: cap hue 1/4 x 1/4 + none 2/4 x 1/4 + wing area 1/4 x 2/4 = 5/16.
            # kappa = (0.75 - 0.3125) / (1 - 0.3125) = 0.636. Both label units 0 and 3: agree 2/2,
            # chance 1/2 x 1/2 x 2 = 1/2, kappa 1.
            self.assertIn("labels agree on 75.0% of 4 units (chance 31.2%), kappa 0.64", result.stdout)
            self.assertIn("on the 2 units both label: 100.0% (chance 50.0%), kappa 1.00", result.stdout)

    def test_a_missing_database_is_an_error_naming_it(self):
        with tempfile.TemporaryDirectory() as folder:
            a = database(folder, "a.sqlite", ["none"])
            missing = os.path.join(folder, "missing.sqlite")
            result = run(a, missing)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("missing.sqlite", result.stderr)


if __name__ == "__main__":
    unittest.main()
