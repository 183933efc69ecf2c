"""tools/check_layers.py on small trees: an include down a layer passes, one up a layer, a file in
no layer and a pattern tie fail, naming the file."""
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "tools" / "check_layers.py"

DOC = """# Architecture

## Layers

1. **base**: errors, results/sqlite_database
2. **models**: models*
3. **results**: results/*

## Components
"""


def run(files, doc=DOC):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "docs").mkdir()
        (root / "docs" / "architecture.md").write_text(doc)
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        result = subprocess.run([sys.executable, str(TOOL), str(root)], capture_output=True, text=True)
        return result.returncode, result.stdout


class CheckLayers(unittest.TestCase):
    def test_includes_down_the_layers_pass(self):
        code, out = run({
            "include/linkstyle/errors.hpp": "",
            "include/linkstyle/models.hpp": '#include "linkstyle/errors.hpp"\n',
            "src/models/models.cpp": '#include "linkstyle/models.hpp"\n',
            "src/results/sqlite_database.cpp": '#include "linkstyle/errors.hpp"\n',
            "src/results/writer.cpp": '#include "linkstyle/models.hpp"\n#include "results/sqlite_database.hpp"\n',
            "src/results/sqlite_database.hpp": "",
        })
        self.assertEqual(code, 0, out)
        self.assertIn("0 problems", out)

    def test_an_include_up_a_layer_fails(self):
        code, out = run({
            "include/linkstyle/errors.hpp": "",
            "include/linkstyle/models.hpp": '#include "results/writer.hpp"\n',
            "src/results/writer.hpp": "",
        })
        self.assertEqual(code, 1)
        self.assertIn("include/linkstyle/models.hpp: includes results/writer.hpp (results), above its own layer (models)", out)

    def test_a_file_in_no_layer_fails(self):
        code, out = run({"src/elsewhere.cpp": ""})
        self.assertEqual(code, 1)
        self.assertIn("elsewhere: in no layer", out)

    def test_a_document_without_layers_is_an_error(self):
        code, _ = run({"src/errors.cpp": ""}, doc="# Architecture\n")
        self.assertNotEqual(code, 0)


if __name__ == "__main__":
    unittest.main()
