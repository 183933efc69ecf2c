"""Batched versus one-image-at-a-time forward of the shipped shapes models, in PyTorch.

The sweep's forward work (generator synthesis, classifier features and head, segmenter) through
the same TorchScript files that linkstyle loads, on any torch device. It shows how much batching
gains on that device. bench_sweep measures linkstyle itself on the CPU, and this script extends
the comparison to a GPU. The part measures (OpenCV, on the CPU) are not included.

Usage: python3 bench/torchscript_batching.py [cpu|cuda] [images]
"""
import sys
import time

import torch


def main():
    device = sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu")
    images = int(sys.argv[2]) if len(sys.argv) > 2 else 1920
    torch.manual_seed(0)
    load = lambda name: torch.jit.load(f"models/shapes/{name}.pt", map_location=device).eval()
    generator, classifier, segmenter = load("generator"), load("classifier"), load("segmenter")
    with torch.no_grad():
        z = torch.randn(images, 64, device=device)
        classes = torch.arange(images, device=device) % 6
        latents = generator.mapping(z, classes, 0.7)

        def raw(w):
            x = ((generator.synthesis(w) + 1) / 2).clamp(0, 1)
            classifier.features(x)

        def pipeline(w):
            x = ((generator.synthesis(w) + 1) / 2).clamp(0, 1)
            classifier.head(classifier.features(x))
            segmenter.segment(x).argmax(1)

        def rate(step, batch):
            def run():
                for i in range(0, images, batch):
                    step(latents[i:i + batch])
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
            run()  # warm-up
            start = time.perf_counter()
            run()
            return images / (time.perf_counter() - start)

        name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
        print(f"torchscript_batching: {name}, torch {torch.__version__}, {images} images of 32x32")
        for label, step in (("raw forward (generator + classifier)", raw), ("pipeline (+ head, segmenter)", pipeline)):
            one = rate(step, 1)
            for batch in (128, 512):
                many = rate(step, batch)
                print(f"  {label:38s} batch {batch:4d}: {many:9.0f} images/s; batch 1: {one:7.0f}/s; ratio {many / one:5.1f}x")


if __name__ == "__main__":
    main()
