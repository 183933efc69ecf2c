#!/usr/bin/env python3
"""Exports an image classifier to linkstyle's TorchScript classifier contract
(docs/model-contract.md): a torchvision architecture with its weights file, or a user's
nn.Module built by a factory function.

Requires: PyTorch and torchvision; --weights a state_dict (or a whole pickled module) saved with
torch.save; for --module, the module's package importable (PYTHONPATH).

    python3 tools/export_classifier.py --arch resnet50 --weights resnet50.pth \
        --output classifier.pt

Ensures: the output file, written atomically, is a TorchScript module with
  features(x [N,3,H,W] float in [0,1]) -> r [N,D]: the preprocessing the model was trained with
      (shorter side resized to --resize, bilinear with antialias; centre crop --crop; mean/std
      normalisation), then the pooled, flattened penultimate layer (ResNet-50: 2048-d);
  head(r) -> logits [N,K]: the final linear layer, differentiable;
  input_size = --crop and class_names (from --class-names, else torchvision's weights metadata
      when it has K names, else empty).
The wrapper is scripted (class_names survives) around the network traced at crop x crop, and is
compared with the eager model behind torchvision's own transforms at batch 1, 3 and 5 and
inputs of 64 x 64, crop x crop and a non-square size before it is saved, and gradients must flow
through head. (linkstyle freezes and inference-optimises the module itself when it loads it.)
Bad input stops with `error: <file>: <problem>`.
"""

import argparse
import importlib
import os
import sys
import time
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_common import (ExportError, check_writable_output, max_abs_difference,  # noqa: E402
                           read_class_names, require_file, run_main, save_atomically)

CHECK_BATCH_SIZES = [1, 3, 5]


def build_torchvision_model(arch: str, weights_path: Optional[str]) -> torch.nn.Module:
    """A torchvision architecture with the weights file's parameters (or the pickled module)."""
    try:
        model = torchvision.models.get_model(arch, weights=None)
    except ValueError:
        raise ExportError(arch, "not a torchvision classification model "
                          f"(e.g. {', '.join(torchvision.models.list_models()[:6])})")
    if weights_path is None:
        raise ExportError(arch, "--weights is required with --arch")
    return with_weights(model, weights_path, arch)


def with_weights(model: torch.nn.Module, weights_path: str, what: str) -> torch.nn.Module:
    """The model with the weights file's state_dict loaded, or the file's own pickled module."""
    loaded = load_weights_file(weights_path)
    if isinstance(loaded, torch.nn.Module):
        return loaded
    try:
        model.load_state_dict(loaded)
    except RuntimeError as error:
        raise ExportError(weights_path, f"does not fit {what}: "
                          + str(error).strip().splitlines()[0])
    return model


def load_weights_file(path: str):
    """A state_dict (optionally under 'state_dict' or 'model') or a whole nn.Module."""
    require_file(path)
    try:
        loaded = torch.load(path, map_location="cpu")
    except Exception as error:  # torch.load surfaces pickle and zip errors of any type
        raise ExportError(path, f"not a torch.save file ({type(error).__name__}: {error})")
    if isinstance(loaded, dict):
        for key in ["state_dict", "model"]:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
        if not all(isinstance(value, torch.Tensor) for value in loaded.values()):
            raise ExportError(path, "not a state_dict (values are not all tensors)")
        return loaded
    if isinstance(loaded, torch.nn.Module):
        return loaded
    raise ExportError(path, f"holds a {type(loaded).__name__}, expected a state_dict or module")


def build_user_model(factory_path: str, weights_path: Optional[str]) -> torch.nn.Module:
    """package.module:function() -> nn.Module, with an optional weights file."""
    module_name, _, function_name = factory_path.partition(":")
    if not module_name or not function_name:
        raise ExportError(factory_path, "expected package.module:factory_function")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ExportError(factory_path, f"cannot import: {error}")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise ExportError(factory_path, f"returned a {type(model).__name__}, not an nn.Module")
    if weights_path is not None:
        return with_weights(model, weights_path, "the module")
    return model


def last_linear_name(model: torch.nn.Module) -> str:
    names = [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    if not names:
        raise ExportError("--head", "the model has no nn.Linear layer; name the head")
    return names[-1]


def plain_linear(head: torch.nn.Linear) -> torch.nn.Linear:
    """A copy of the head without the hooks the trace put on it (scripting refuses hooks)."""
    copy = torch.nn.Linear(head.in_features, head.out_features, bias=head.bias is not None)
    copy.load_state_dict(head.state_dict())
    return copy.eval().requires_grad_(False)


class PenultimateForTrace(torch.nn.Module):
    """Normalised crop -> pooled, flattened penultimate features: the output of the named
    penultimate submodule, or, without one, the input of the head (what torchvision feeds it)."""

    def __init__(self, model: torch.nn.Module, head_name: str, penultimate_name: Optional[str]):
        super().__init__()
        self.model = model
        self.captured: List[torch.Tensor] = []
        if penultimate_name is None:
            model.get_submodule(head_name).register_forward_pre_hook(
                lambda module, inputs: self.captured.append(inputs[0]))
        else:
            model.get_submodule(penultimate_name).register_forward_hook(
                lambda module, inputs, output: self.captured.append(output))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.captured.clear()
        self.model(x)
        features = self.captured[0]
        if features.dim() == 4:
            features = F.adaptive_avg_pool2d(features, 1)
        return features.flatten(1)


class ExportedClassifier(torch.nn.Module):
    """The contract's face: preprocessing in tensor ops, the traced network, the head."""

    input_size: int
    resize: int
    class_names: List[str]

    def __init__(self, network, head: torch.nn.Linear, resize: int, crop: int,
                 mean: List[float], std: List[float], class_names: List[str]):
        super().__init__()
        self.network = network
        self.head_layer = head
        self.resize = resize
        self.input_size = crop
        self.class_names = class_names
        self.register_buffer("mean", torch.tensor(mean).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).reshape(1, 3, 1, 1))

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """torchvision's Resize(resize, antialias=True), CenterCrop(crop), Normalize."""
        height, width = x.shape[2], x.shape[3]
        if height <= width:
            size = [self.resize, int(self.resize * width / height)]
        else:
            size = [int(self.resize * height / width), self.resize]
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        top = int(round((size[0] - self.input_size) / 2.0))
        left = int(round((size[1] - self.input_size) / 2.0))
        x = x[:, :, top:top + self.input_size, left:left + self.input_size]
        return (x - self.mean) / self.std

    @torch.jit.export
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.preprocess(x))

    @torch.jit.export
    def head(self, r: torch.Tensor) -> torch.Tensor:
        return self.head_layer(r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def eager_reference(model, penultimate: PenultimateForTrace, x, args) -> Tuple[torch.Tensor,
                                                                                 torch.Tensor]:
    """Features and logits of the eager model behind torchvision's own transforms."""
    transform = T.Compose([T.Resize(args.resize, antialias=True), T.CenterCrop(args.crop),
                           T.Normalize(args.mean, args.std)])
    prepared = transform(x)
    return penultimate(prepared), model(prepared)


def check_outputs(label: str, exported, model, penultimate, args, source: str) -> float:
    """Every batch size and input size; differences relative to the reference's magnitude."""
    random = torch.Generator().manual_seed(0)
    worst = 0.0
    for height, width in [(64, 64), (args.crop, args.crop), (args.crop + 37, args.crop - 29)]:
        for size in CHECK_BATCH_SIZES:
            x = torch.rand(size, 3, height, width, generator=random)
            with torch.no_grad():
                features_reference, logits_reference = eager_reference(model, penultimate, x, args)
                features = exported.features(x)
                logits = exported.head(features)
            for output, reference in [(features, features_reference), (logits, logits_reference)]:
                scale = max(1.0, reference.abs().max().item())
                worst = max(worst, max_abs_difference(output, reference) / scale)
    print(f"  {label}: max abs difference / max(1, |reference|) = {worst:.3g} over batches "
          f"{CHECK_BATCH_SIZES} and inputs 64x64, {args.crop}x{args.crop}, "
          f"{args.crop + 37}x{args.crop - 29}")
    if not worst <= args.tolerance:
        raise ExportError(source, f"{label} differs from the eager model by {worst:.3g} "
                          f"(tolerance {args.tolerance:g})")
    return worst


def check_head_gradient(exported, head: torch.nn.Linear, source: str) -> None:
    """d sum(head(r)) / dr must be the column sums of the weight: counterfactuals need it."""
    r = torch.randn(2, head.in_features, requires_grad=True)
    exported.head(r).sum().backward()
    expected = head.weight.detach().sum(0).expand(2, -1)
    difference = max_abs_difference(r.grad, expected) if r.grad is not None else float("inf")
    print(f"  gradient through head: max abs difference {difference:.3g}")
    if not difference <= 1e-4 * max(1.0, expected.abs().max().item()):
        raise ExportError(source, "no correct gradient through head after export")


def parse_arguments():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples:
  python3 tools/export_classifier.py --arch resnet50 --weights resnet50.pth --output classifier.pt
  PYTHONPATH=/path/to/mycode python3 tools/export_classifier.py --module mynets:build \\
      --weights mynet.pth --penultimate pool --head fc --class-names classes.txt \\
      --resize 64 --crop 64 --mean 0.5 0.5 0.5 --std 0.5 0.5 0.5 --output classifier.pt""")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--arch", help="torchvision model name (resnet50, vit_b_16, ...)")
    source.add_argument("--module", help="package.module:factory_function returning an nn.Module")
    parser.add_argument("--weights", help="state_dict (or whole module) saved with torch.save")
    parser.add_argument("--penultimate", help="submodule whose output, pooled and flattened, is "
                        "r (default: the input of the head)")
    parser.add_argument("--head", help="final linear submodule (default: the last nn.Linear)")
    parser.add_argument("--class-names", help="text file, one class name per line")
    parser.add_argument("--resize", type=int, default=256, help="shorter side (default 256)")
    parser.add_argument("--crop", type=int, default=224, help="centre crop (default 224)")
    parser.add_argument("--mean", type=float, nargs=3, default=[0.485, 0.456, 0.406])
    parser.add_argument("--std", type=float, nargs=3, default=[0.229, 0.224, 0.225])
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest allowed |export - eager| / max(1, |eager|) (default 1e-4)")
    parser.add_argument("--output", required=True, help="TorchScript file to write")
    args = parser.parse_args()
    if args.crop < 1 or args.resize < args.crop:
        parser.error("need 1 <= --crop <= --resize")
    return args


def main():
    args = parse_arguments()
    check_writable_output(args.output)
    started = time.time()
    source = args.weights or args.arch or args.module
    model = (build_torchvision_model(args.arch, args.weights) if args.arch
             else build_user_model(args.module, args.weights)).eval().requires_grad_(False)
    head_name = args.head or last_linear_name(model)
    names = dict(model.named_modules())
    for flag, name in [("--head", head_name), ("--penultimate", args.penultimate)]:
        if name is not None and name not in names:
            raise ExportError(source, f"{flag} {name}: no such submodule")
    head = names[head_name]
    if not isinstance(head, torch.nn.Linear):
        raise ExportError(source, f"--head {head_name} is a {type(head).__name__}, not nn.Linear")
    class_names = read_class_names(args.class_names, head.out_features)
    if not class_names and args.arch:
        categories = torchvision.models.get_model_weights(args.arch).DEFAULT.meta.get(
            "categories", [])
        class_names = list(categories) if len(categories) == head.out_features else []

    penultimate = PenultimateForTrace(model, head_name, args.penultimate)
    with torch.no_grad():
        network = torch.jit.trace(penultimate, torch.rand(2, 3, args.crop, args.crop),
                                  check_trace=False)
        probe = penultimate(torch.rand(1, 3, args.crop, args.crop))
    if probe.shape[1] != head.in_features:
        raise ExportError(source, f"penultimate output has {probe.shape[1]} features, the head "
                          f"takes {head.in_features}")
    exported = torch.jit.script(ExportedClassifier(network, plain_linear(head), args.resize,
                                                   args.crop, args.mean, args.std, class_names))
    print(f"{source}: {head.in_features} features, {head.out_features} classes, "
          f"{len(class_names)} class names, input {args.crop}")
    check_outputs("export", exported, model, penultimate, args, source)
    check_head_gradient(exported, head, source)
    save_atomically(exported, args.output)
    print(f"wrote {args.output} in {time.time() - started:.1f} s")


if __name__ == "__main__":
    run_main(main)
