#!/usr/bin/python3
"""Ceiling: the raw batched forward of generator + classifier, images per second.

Contract
--------
Models as in docs/model-contract.md (classifier: features, head; generator: mapping, synthesis,
z_dim, num_classes). For each batch size B in --batch-sizes, under torch.no_grad() with
--threads intra-op threads, times

    w = mapping(z [B, z_dim], c [B], psi); x = synthesis(w); x = ((x + 1) / 2).clamp(0, 1);
    r = features(x); logits = head(r)

after one warm-up batch, repeating the batch until at least --min-seconds have passed (and at
least --min-batches batches). Nothing else: no 8-bit round trip, no filtering, no file writes.
This is what any pipeline on these models and this many threads can at most reach (on a CPU).

Prints one JSON object: {"threads": T, "ceilings": [{"batch_size", "batches", "images",
"seconds", "images_per_second"}, ...]}.

Usage: ceiling.py --classifier C.pt --generator G.pt [--classes 0,1] [--batch-sizes 32,128]
                  [--threads 2] [--psi 0.7] [--min-seconds 3] [--min-batches 2]
"""
import argparse
import json
import time

import torch


def measure(classifier, generator, classes, batch_size, psi, min_seconds, min_batches):
    rng = torch.Generator().manual_seed(0)
    c = torch.tensor([classes[i % len(classes)] for i in range(batch_size)], dtype=torch.int64)

    def forward():
        z = torch.randn(batch_size, int(generator.z_dim), generator=rng)
        x = generator.synthesis(generator.mapping(z, c, psi))
        r = classifier.features(((x + 1) / 2).clamp(0, 1))
        return classifier.head(r)

    forward()  # warm-up: TorchScript profiling and first allocations
    batches = 0
    started = time.perf_counter()
    while True:
        forward()
        batches += 1
        seconds = time.perf_counter() - started
        if seconds >= min_seconds and batches >= min_batches:
            break
    images = batches * batch_size
    return {"batch_size": batch_size, "batches": batches, "images": images, "seconds": seconds,
            "images_per_second": images / seconds}


def main():
    parser = argparse.ArgumentParser(description="raw batched forward of generator + classifier")
    parser.add_argument("--classifier", required=True)
    parser.add_argument("--generator", required=True)
    parser.add_argument("--classes", default="0")
    parser.add_argument("--batch-sizes", default="32,128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--psi", type=float, default=0.7)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--min-batches", type=int, default=2)
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    classes = [int(v) for v in arguments.classes.split(",") if v.strip()]
    batch_sizes = sorted({int(v) for v in arguments.batch_sizes.split(",") if v.strip()})
    with torch.no_grad():
        classifier = torch.jit.load(arguments.classifier).eval()
        generator = torch.jit.load(arguments.generator).eval()
        ceilings = [measure(classifier, generator, classes, b, arguments.psi, arguments.min_seconds,
                            arguments.min_batches) for b in batch_sizes]
    print(json.dumps({"threads": arguments.threads, "ceilings": ceilings}))


if __name__ == "__main__":
    main()
