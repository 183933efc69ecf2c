"""Tests of tools/export_generator.py and tools/export_classifier.py on stand-ins, and of the
exported pair in the linkstyle program (LINKSTYLE_CLI). One file per component's tool pair."""

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import unittest

import torch
import torchvision

TESTS = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(TESTS, "..", "..", "tools")
sys.path.insert(0, TESTS)
import standin_official  # noqa: E402

torch.set_num_threads(1)


def run_tool(tool: str, *arguments: str) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=TESTS, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(TOOLS, tool), *arguments],
                          capture_output=True, text=True, env=environment, timeout=300)


class Folder:
    """A temporary folder shared by a test class."""

    @classmethod
    def make_folder(cls):
        cls.folder = tempfile.mkdtemp(prefix="export-tools-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.folder, ignore_errors=True)

    def path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def assert_fails_cleanly(self, result, path: str, output: str):
        self.assertEqual(result.returncode, 2, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith(f"error: {path}: "), last)
        self.assertFalse(os.path.exists(output))
        folder = os.path.dirname(output)
        if os.path.isdir(folder):
            self.assertEqual([n for n in os.listdir(folder) if n.startswith(".export-")], [])


class GeneratorExportTest(Folder, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.make_folder()
        cls.network = os.path.join(cls.folder, "standin.pkl")
        standin_official.make_generator_pickle(cls.network)
        cls.output = os.path.join(cls.folder, "generator.pt")
        result = run_tool("export_generator.py", "--network", cls.network, "--output", cls.output,
                          "--w-avg-samples", "64")
        assert result.returncode == 0, result.stderr
        cls.log = result.stdout
        cls.exported = torch.jit.load(cls.output)
        with open(cls.network, "rb") as network_file:
            cls.official = pickle.load(network_file)["G_ema"]

    def test_the_official_trap_is_there(self):
        with self.assertRaises(Exception):
            torch.jit.script(self.official)

    def test_contract(self):
        g = self.exported
        self.assertEqual((g.z_dim, g.w_dim, g.num_classes, g.resolution), (8, 8, 3, 32))
        self.assertEqual(list(g.class_names), [])
        z = torch.randn(2, 8)
        w = g.mapping(z, torch.tensor([0, 2]), 0.7)
        self.assertEqual(list(w.shape), [2, 8])
        self.assertEqual(list(g.synthesis(w).shape), [2, 3, 32, 32])
        image, features = g.synthesis_with_features(w)
        self.assertTrue(torch.equal(image, g.synthesis(w)))
        for a, b in zip(features, g.synthesis_features(w)):
            self.assertTrue(torch.equal(a, b))
        self.assertIn("max abs difference", self.log)

    def test_batch_independent(self):
        z, classes = torch.randn(5, 8), torch.tensor([0, 1, 2, 1, 0])
        w = self.exported.mapping(z, classes, 0.7)
        single = torch.cat([self.exported.mapping(z[i:i + 1], classes[i:i + 1], 0.7)
                            for i in range(5)])
        self.assertLess((w - single).abs().max().item(), 1e-5)
        for size in [1, 3, 5]:
            batch = self.exported.synthesis(w[:size])
            alone = torch.cat([self.exported.synthesis(w[i:i + 1]) for i in range(size)])
            self.assertLess((batch - alone).abs().max().item(), 1e-5)

    def test_matches_official_model_per_sample(self):
        w = torch.randn(3, 8)
        with torch.no_grad():
            for i in range(3):
                ws = w[i:i + 1].unsqueeze(1).repeat(1, self.official.num_ws, 1)
                official = self.official.synthesis(ws, noise_mode="const", force_fp32=True)
                exported = self.exported.synthesis(w[i:i + 1])
                self.assertLess((official - exported).abs().max().item(), 1e-4)

    def test_truncation_toward_the_class_mean(self):
        g, z = self.exported, torch.randn(3, 8)
        classes = torch.tensor([0, 1, 2])
        at_zero = g.mapping(z, classes, 0.0)
        self.assertTrue(torch.allclose(at_zero, g.w_avg[classes]))
        self.assertGreater((g.w_avg[0] - g.w_avg[1]).abs().max().item(), 1e-3)
        global_mean = self.official.mapping.w_avg
        self.assertGreater((g.w_avg - global_mean).abs().max().item(), 1e-2)
        # The class means are means of psi=1 mappings of their class.
        many = g.mapping(torch.randn(4000, 8), torch.full([4000], 2, dtype=torch.int64), 1.0)
        self.assertLess((many.mean(0) - g.w_avg[2]).abs().max().item(), 0.1)
        full, half = g.mapping(z, classes, 1.0), g.mapping(z, classes, 0.5)
        self.assertTrue(torch.allclose(half, at_zero + 0.5 * (full - at_zero), atol=1e-5))

    def test_feature_maps_cropped_of_margins(self):
        features = self.exported.synthesis_features(torch.randn(2, 8))
        # Defaults: L0 (12 px, sampling rate 8) and L1 (20 px, sampling rate 16).
        self.assertEqual([list(f.shape) for f in features], [[2, 16, 8, 8], [2, 16, 16, 16]])
        w = torch.randn(1, 8)
        captured = {}
        layer = self.official.synthesis.L1_20_16
        handle = layer.register_forward_hook(lambda m, i, o: captured.update(map=o))
        with torch.no_grad():
            self.official.synthesis(w.unsqueeze(1).repeat(1, self.official.num_ws, 1))
        handle.remove()
        centre = captured["map"][:, :, 2:18, 2:18]
        self.assertLess((self.exported.synthesis_features(w)[1] - centre).abs().max().item(), 1e-4)

    def test_range_and_zero_one_output(self):
        image = self.exported.synthesis(torch.randn(4, 8) * 3)
        self.assertGreaterEqual(image.min().item(), -1)
        self.assertLessEqual(image.max().item(), 1)
        network, output = self.path("zero_one.pkl"), self.path("zero_one.pt")
        standin_official.make_generator_pickle(network, zero_one_output=True)
        result = run_tool("export_generator.py", "--network", network, "--output", output,
                          "--w-avg-samples", "8", "--zero-one-output", "--feature-layers",
                          "L2_32_16")
        self.assertEqual(result.returncode, 0, result.stderr)
        exported = torch.jit.load(output)
        w = torch.randn(4, 8)
        image = exported.synthesis(w)
        self.assertLess(image.min().item(), -0.05)
        # Same weights, images in [0, 1] instead of [-1, 1]: the export maps them back.
        self.assertLess((image - self.exported.synthesis(w)).abs().max().item(), 1e-5)
        self.assertEqual([list(f.shape) for f in exported.synthesis_features(torch.randn(1, 8))],
                         [[1, 16, 32, 32]])

    def test_missing_file(self):
        output = self.path("missing.pt")
        result = run_tool("export_generator.py", "--network", self.path("nope.pkl"),
                          "--output", output)
        self.assert_fails_cleanly(result, self.path("nope.pkl"), output)

    def test_corrupt_pickle(self):
        network, output = self.path("corrupt.pkl"), self.path("corrupt.pt")
        with open(network, "wb") as network_file:
            network_file.write(b"\x80\x04not a pickle at all")
        self.assert_fails_cleanly(run_tool("export_generator.py", "--network", network,
                                           "--output", output), network, output)

    def test_pickle_without_generator(self):
        network, output = self.path("no_g.pkl"), self.path("no_g.pt")
        with open(network, "wb") as network_file:
            pickle.dump({"D": 1}, network_file)
        self.assert_fails_cleanly(run_tool("export_generator.py", "--network", network,
                                           "--output", output), network, output)

    def test_unwritable_output(self):
        blocker = self.path("a_file")
        open(blocker, "w").close()
        output = os.path.join(blocker, "generator.pt")
        result = run_tool("export_generator.py", "--network", self.network, "--output", output)
        self.assert_fails_cleanly(result, output, output)

    def test_unknown_feature_layer(self):
        output = self.path("bad_layer.pt")
        result = run_tool("export_generator.py", "--network", self.network, "--output", output,
                          "--feature-layers", "b64")
        self.assert_fails_cleanly(result, self.network, output)
        self.assertIn("L1_20_16", result.stderr)


class ClassifierExportTest(Folder, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.make_folder()
        torch.manual_seed(0)
        cls.model = torchvision.models.resnet18().eval()
        cls.weights = os.path.join(cls.folder, "resnet18.pth")
        torch.save(cls.model.state_dict(), cls.weights)
        cls.outputs = {}
        for name, extra in [("plain", [])]:
            output = os.path.join(cls.folder, f"classifier_{name}.pt")
            result = run_tool("export_classifier.py", "--arch", "resnet18", "--weights",
                              cls.weights, "--resize", "72", "--crop", "64", "--output", output,
                              *extra)
            assert result.returncode == 0, result.stderr
            cls.outputs[name] = output

    def test_contract(self):
        c = torch.jit.load(self.outputs["plain"])
        self.assertEqual(c.input_size, 64)
        self.assertEqual(len(c.class_names), 1000)
        self.assertEqual(c.class_names[0], "tench")
        r = c.features(torch.rand(2, 3, 40, 90))
        self.assertEqual(list(r.shape), [2, 512])
        self.assertEqual(list(c.head(r).shape), [2, 1000])

    def test_matches_eager_model_and_batch_independent(self):
        c = torch.jit.load(self.outputs["plain"])
        x = torch.rand(3, 3, 64, 64)
        prepared = torchvision.transforms.Compose([
            torchvision.transforms.Resize(72, antialias=True),
            torchvision.transforms.CenterCrop(64),
            torchvision.transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])(x)
        with torch.no_grad():
            logits = self.model(prepared)
            r = c.features(x)
        self.assertLess((c.head(r) - logits).abs().max().item(), 1e-4)
        alone = torch.cat([c.features(x[i:i + 1]) for i in range(3)])
        self.assertLess((r - alone).abs().max().item(), 1e-5)

    def test_head_differentiable(self):
        c = torch.jit.load(self.outputs["plain"])
        r = c.features(torch.rand(2, 3, 64, 80)).detach().requires_grad_()
        c.head(r)[:, 3].sum().backward()
        self.assertTrue(torch.allclose(r.grad[0], self.model.fc.weight[3], atol=1e-6))

    def test_user_module(self):
        names, output = self.path("names.txt"), self.path("user.pt")
        with open(names, "w") as names_file:
            names_file.write("a\nb\nc\nd\n")
        result = run_tool("export_classifier.py", "--module", "standin_classifier:build",
                          "--penultimate", "pool", "--head", "fc", "--class-names", names,
                          "--resize", "32", "--crop", "32", "--output", output)
        self.assertEqual(result.returncode, 0, result.stderr)
        c = torch.jit.load(output)
        self.assertEqual(list(c.class_names), ["a", "b", "c", "d"])
        self.assertEqual(list(c.features(torch.rand(2, 3, 32, 32)).shape), [2, 8])

    def test_missing_weights(self):
        output = self.path("missing.pt")
        result = run_tool("export_classifier.py", "--arch", "resnet18", "--weights",
                          self.path("nope.pth"), "--output", output)
        self.assert_fails_cleanly(result, self.path("nope.pth"), output)

    def test_corrupt_weights(self):
        weights, output = self.path("corrupt.pth"), self.path("corrupt.pt")
        with open(weights, "wb") as weights_file:
            weights_file.write(b"PK\x03\x04 truncated")
        self.assert_fails_cleanly(run_tool("export_classifier.py", "--arch", "resnet18",
                                           "--weights", weights, "--output", output),
                                  weights, output)

    def test_weights_of_another_architecture(self):
        output = self.path("mismatch.pt")
        result = run_tool("export_classifier.py", "--arch", "resnet34", "--weights",
                          self.weights, "--output", output)
        self.assert_fails_cleanly(result, self.weights, output)

    def test_unwritable_output(self):
        blocker = self.path("a_file")
        open(blocker, "w").close()
        output = os.path.join(blocker, "classifier.pt")
        result = run_tool("export_classifier.py", "--arch", "resnet18", "--weights",
                          self.weights, "--output", output)
        self.assert_fails_cleanly(result, output, output)


@unittest.skipUnless(os.environ.get("LINKSTYLE_CLI"), "LINKSTYLE_CLI is not set")
class ExportedPairInLinkstyleTest(Folder, unittest.TestCase):
    """The linkstyle program loads the exported pair and makes (w, r) pairs from it."""

    @classmethod
    def setUpClass(cls):
        cls.make_folder()

    def test_init_and_pairs(self):
        network, generator = self.path("standin.pkl"), self.path("generator.pt")
        standin_official.make_generator_pickle(network)
        result = run_tool("export_generator.py", "--network", network, "--output", generator,
                          "--w-avg-samples", "16")
        self.assertEqual(result.returncode, 0, result.stderr)
        weights, classifier = self.path("net.pth"), self.path("classifier.pt")
        torch.save(standin_classifier_state(), weights)
        result = run_tool("export_classifier.py", "--module", "standin_classifier:build",
                          "--weights", weights, "--penultimate", "pool", "--head", "fc",
                          "--resize", "32", "--crop", "32", "--output", classifier)
        self.assertEqual(result.returncode, 0, result.stderr)
        cli, study = os.environ["LINKSTYLE_CLI"], self.path("study")
        environment = dict(os.environ, LINKSTYLE_THREADS="1")
        def linkstyle(*arguments):
            result = subprocess.run([cli, *arguments], capture_output=True, text=True,
                                    env=environment, timeout=300)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

        linkstyle("init", study, "--classifier", classifier, "--generator", generator,
                  "--classes", "0,1", "--samples-per-class", "4", "--batch-size", "4",
                  "--shard-size", "8")
        # The stand-in classifier always answers class 0: both generator classes are its 0.
        settings_path = os.path.join(study, "study.toml")
        with open(settings_path) as settings_file:
            settings = settings_file.read()
        settings = settings.replace("[pairs]\n", "[pairs]\nclassifier_classes = [0, 0]\n", 1)
        with open(settings_path, "w") as settings_file:
            settings_file.write(settings)
        linkstyle("pairs", "--study", study)
        self.assertTrue(os.path.isfile(os.path.join(study, "pairs", "manifest.json")))


def standin_classifier_state():
    """The stand-in classifier's weights with a head that always answers class 0, so that
    pairs keeps every sample (the study maps both generator classes to it)."""
    import standin_classifier
    model = standin_classifier.build()
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[0] = 1.0
    return model.state_dict()


if __name__ == "__main__":
    unittest.main()
