#!/usr/bin/python3
"""Reference pipeline: what a user runs instead of linkstyle, written the way the paper's public
code works, on the same TorchScript models.

Contract
--------
Models (docs/model-contract.md):
  classifier: features(x in [0,1], [N,3,H,W]) -> r [N,D]; head(r) -> logits [N,K];
              optional int attribute input_size (default 64)
  generator:  mapping(z [N,z_dim], c int64 [N], psi) -> w [N,w_dim]; synthesis(w) -> [N,3,R,R] in
              [-1,1]; int attributes z_dim, w_dim, num_classes, resolution

What it does (one image at a time, as the reference code does):
  pairs  for each class c: draw z ~ N(0, I) (seeded, a fresh z every draw), w = mapping(z, c, psi),
         x = synthesis(w), 8-bit round trip (x * 127.5 + 128, clamp, uint8 -> PIL image), the
         256/224 transform (Resize(round(s * 256 / 224)) + CenterCrop(s) + ToTensor, s = the
         classifier's input_size), r = features(x), logits = head(r); keep (w, r) when the filter
         accepts (argmax == class by default), until --samples-per-class are kept or
         50 x --samples-per-class draws were made.
  fit    scikit-learn LinearRegression().fit(r, w) on every kept pair, in memory (float32).
  sweep  tuning samples: --sweep-samples-per-class per class from --sweep-seed, not filtered,
         through the same 8-bit/PIL path, r0 = features. Unit range = [min, max] of r0 over them.
         For each sample, unit and step v in linspace(min, max, --steps): r = r0 with r[unit] = v,
         w = L.predict(r), synthesis(w), 8-bit PIL round trip, transform, features, head.

Counting: every image the generator synthesised counts, accepted or not (pairs), tuning images
included (sweep). Stage times exclude loading the models (done once, before any stage).

Prints one JSON object on stdout:
  {"pairs": {"images", "kept", "seconds", "images_per_second", "per_class": [...]},
   "fit": {"seconds", "rows", "features", "latent_dim"},
   "sweep": {"images", "tuning_images", "sweep_images", "seconds", "images_per_second"},
   "counterfactuals": "n/a", "threads": T}

Usage:
  reference_pipeline.py --classifier C.pt --generator G.pt --classes 0,1,2 \
      [--samples-per-class 300] [--psi 0.7] [--seed 0] [--filter argmax|none|top-k:K|min-probability:P]
      [--classifier-classes 0,1,2] [--units 0,1,2,3] [--steps 5] [--sweep-samples-per-class 4]
      [--sweep-seed 136] [--threads 2] [--stages pairs,fit,sweep]
Thread counts for BLAS (scikit-learn) follow --threads: it is set in the environment before numpy
is imported.
"""
import argparse
import json
import os
import sys
import time


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--generator", required=True)
    parser.add_argument("--classes", required=True, help="generator classes, comma-separated")
    parser.add_argument("--classifier-classes", default="", help="the classifier's index of each class (default: same)")
    parser.add_argument("--samples-per-class", type=int, default=300)
    parser.add_argument("--psi", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--filter", default="argmax", help="argmax, none, top-k:K or min-probability:P")
    parser.add_argument("--units", default="0,1,2,3")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sweep-samples-per-class", type=int, default=4)
    parser.add_argument("--sweep-seed", type=int, default=136)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stages", default="pairs,fit,sweep")
    return parser.parse_args()


ARGUMENTS = parse_arguments()
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(ARGUMENTS.threads)

import numpy as np  # noqa: E402  (after the thread count is in the environment)
import torch  # noqa: E402
import torchvision.transforms as transforms  # noqa: E402
from PIL import Image  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402


def int_list(text):
    return [int(v) for v in text.split(",") if v.strip() != ""]


def make_filter(spec):
    """Returns accept(logits [K], classifier_class) -> bool for the filter spec."""
    if spec == "argmax":
        return lambda logits, c: int(logits.argmax()) == c
    if spec == "none":
        return lambda logits, c: True
    if spec.startswith("top-k:"):
        k = int(spec.split(":", 1)[1])
        return lambda logits, c: c in logits.topk(k).indices.tolist()
    if spec.startswith("min-probability:"):
        p = float(spec.split(":", 1)[1])
        return lambda logits, c: float(torch.softmax(logits, 0)[c]) >= p
    sys.exit(f"error: --filter: unknown filter {spec!r} (argmax, none, top-k:K, min-probability:P)")


class ReferencePipeline:
    def __init__(self, classifier_path, generator_path):
        self.classifier = torch.jit.load(classifier_path).eval()
        self.generator = torch.jit.load(generator_path).eval()
        size = int(self.classifier.input_size) if hasattr(self.classifier, "input_size") else 64
        self.input_size = size
        self.transform = transforms.Compose([
            transforms.Resize(round(size * 256 / 224)),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
        ])
        self.z_dim = int(self.generator.z_dim)

    @staticmethod
    def to_pil(image):
        """[1,3,R,R] in [-1,1] -> 8-bit PIL image, as the reference saves its images."""
        array = (image[0].permute(1, 2, 0) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
        return Image.fromarray(array, "RGB")

    def encode(self, pil_image):
        """PIL image -> (r [D], logits [K]) through the 256/224 transform."""
        x = self.transform(pil_image).unsqueeze(0)
        r = self.classifier.features(x)
        return r[0], self.classifier.head(r)[0]

    def synthesise_and_encode(self, w):
        return self.encode(self.to_pil(self.generator.synthesis(w)))

    def latent(self, z, generator_class, psi):
        return self.generator.mapping(z, torch.tensor([generator_class], dtype=torch.int64), psi)


def run_pairs(pipeline, arguments, accept):
    classes = int_list(arguments.classes)
    classifier_classes = int_list(arguments.classifier_classes) or classes
    rng = torch.Generator().manual_seed(arguments.seed)  # one stream: every draw is a fresh z
    ws, rs, per_class = [], [], []
    images = 0
    started = time.perf_counter()
    for generator_class, classifier_class in zip(classes, classifier_classes):
        kept = drawn = 0
        while kept < arguments.samples_per_class and drawn < 50 * arguments.samples_per_class:
            z = torch.randn(1, pipeline.z_dim, generator=rng)
            w = pipeline.latent(z, generator_class, arguments.psi)
            r, logits = pipeline.synthesise_and_encode(w)
            drawn += 1
            if accept(logits, classifier_class):
                ws.append(w[0].numpy().copy())
                rs.append(r.numpy().copy())
                kept += 1
        images += drawn
        per_class.append({"class": generator_class, "drawn": drawn, "kept": kept})
    seconds = time.perf_counter() - started
    r_all = np.stack(rs).astype(np.float32) if rs else np.zeros((0, 0), np.float32)
    w_all = np.stack(ws).astype(np.float32) if ws else np.zeros((0, 0), np.float32)
    report = {"images": images, "kept": len(rs), "seconds": seconds,
              "images_per_second": images / seconds if seconds > 0 else None, "per_class": per_class}
    return r_all, w_all, report


def run_fit(r_all, w_all):
    started = time.perf_counter()
    model = LinearRegression().fit(r_all, w_all)
    seconds = time.perf_counter() - started
    return model, {"seconds": seconds, "rows": int(r_all.shape[0]), "features": int(r_all.shape[1]),
                   "latent_dim": int(w_all.shape[1])}


def run_sweep(pipeline, arguments, model):
    classes = int_list(arguments.classes)
    units = int_list(arguments.units)
    started = time.perf_counter()
    rng = torch.Generator().manual_seed(arguments.sweep_seed)
    tuning = []
    for generator_class in classes:
        for _ in range(arguments.sweep_samples_per_class):
            z = torch.randn(1, pipeline.z_dim, generator=rng)
            r, _ = pipeline.synthesise_and_encode(pipeline.latent(z, generator_class, arguments.psi))
            tuning.append(r.numpy().copy())
    tuning = np.stack(tuning)
    low, high = tuning.min(axis=0), tuning.max(axis=0)
    sweep_images = 0
    responses = []  # r'[unit] per step, kept so the work is not optimised away and can be checked
    for sample in tuning:
        for unit in units:
            for value in np.linspace(low[unit], high[unit], arguments.steps):
                r = sample.copy()
                r[unit] = value
                w = torch.from_numpy(model.predict(r[None, :]).astype(np.float32))
                r_cycle, logits = pipeline.synthesise_and_encode(w)
                responses.append((float(r_cycle[unit]), int(logits.argmax())))
                sweep_images += 1
    seconds = time.perf_counter() - started
    images = len(tuning) + sweep_images
    return {"images": images, "tuning_images": len(tuning), "sweep_images": sweep_images, "seconds": seconds,
            "images_per_second": images / seconds if seconds > 0 else None, "units": units,
            "steps": arguments.steps}


def main():
    arguments = ARGUMENTS
    torch.set_num_threads(arguments.threads)
    stages = set(arguments.stages.split(","))
    accept = make_filter(arguments.filter)
    result = {"threads": arguments.threads, "filter": arguments.filter, "counterfactuals": "n/a"}
    with torch.no_grad():
        pipeline = ReferencePipeline(arguments.classifier, arguments.generator)
        result["input_size"] = pipeline.input_size
        r_all, w_all, result["pairs"] = run_pairs(pipeline, arguments, accept)
        if result["pairs"]["kept"] < 2:
            sys.exit(f"error: the filter {arguments.filter!r} kept {result['pairs']['kept']} pairs; nothing to fit")
        if "fit" in stages or "sweep" in stages:
            model, result["fit"] = run_fit(r_all, w_all)
        if "sweep" in stages:
            result["sweep"] = run_sweep(pipeline, arguments, model)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
