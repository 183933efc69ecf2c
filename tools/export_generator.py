#!/usr/bin/env python3
"""Exports an official StyleGAN2-ADA, StyleGAN3 or StyleGAN-XL network pickle to linkstyle's
TorchScript generator contract (docs/model-contract.md).

Requires: the official code of the network's family on PYTHONPATH (the pickles rebuild their
classes from embedded source that imports `dnnlib` and `torch_utils`; `legacy` is used to read
the pickle when it can be imported, plain pickle otherwise), PyTorch, and a pickle holding
`G_ema`.

    PYTHONPATH=/path/to/stylegan3 python3 tools/export_generator.py \
        --network network-snapshot.pkl --output generator.pt

Ensures: the output file, written atomically, is a TorchScript module with
  mapping(z [N,z_dim], c [N] int64, psi float) -> w [N,w_dim], truncated toward the mean w of
      class c (w_avg[c] + psi (w - w_avg[c])); the per-class means come from the pickle when it
      holds them (StyleGAN-XL), else they are estimated from --w-avg-samples mappings per class;
  synthesis(w [N,w_dim]) -> [N,3,R,R] in [-1,1], noise off, w given to every layer;
  synthesis_features(w) -> List[Tensor] and synthesis_with_features(w) -> (image, features), the
      chosen layers' maps with the margins around their sampling grid cropped;
  int attributes z_dim, w_dim, num_classes, resolution and class_names (List[str], maybe empty).
Every method is independent of the batch: the official grouped ("fused") modulated convolution,
which bakes the batch size into a trace and, in StyleGAN3/XL, normalises the styles over the
whole batch, is replaced while tracing by its per-sample form, and the reference (non-CUDA)
implementations of the custom ops are used. Before saving, the export is compared with the
official model run eagerly one sample at a time, for traces made at batch 1, 3 and 5 and for the
saved batch-1 trace run at batch 1, 3 and 5. Bad input stops with `error: <file>: <problem>`.
"""

import argparse
import contextlib
import importlib
import inspect
import os
import pickle
import sys
import time
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_common import (ExportError, check_writable_output, max_abs_difference,  # noqa: E402
                           read_class_names, require_file, run_main, save_atomically)

REFERENCE_OP_MODULES = ["torch_utils.ops.bias_act", "torch_utils.ops.upfirdn2d",
                        "torch_utils.ops.filtered_lrelu"]
FUSED_MULTIPLY_ADD_MODULE = "torch_utils.ops.fma"
CHECK_BATCH_SIZES = [1, 3, 5]


def load_network(path: str) -> torch.nn.Module:
    """Reads G_ema from an official network pickle (legacy.load_network_pkl when importable)."""
    require_file(path)
    try:
        legacy = importlib.import_module("legacy")
    except ImportError:
        legacy = None
    try:
        with open(path, "rb") as network_file:
            if legacy is not None:
                data = legacy.load_network_pkl(network_file)
            else:
                data = pickle.load(network_file)
    except ModuleNotFoundError as error:
        raise ExportError(path, f"needs module '{error.name}': put the official code of its "
                          "family on PYTHONPATH")
    except Exception as error:  # a pickle can raise anything while it rebuilds its objects
        raise ExportError(path, f"not a readable network pickle ({type(error).__name__}: {error})")
    if not isinstance(data, dict) or "G_ema" not in data:
        raise ExportError(path, "no 'G_ema' in the pickle")
    generator = data["G_ema"]
    for name in ["z_dim", "c_dim", "w_dim", "img_resolution", "num_ws", "mapping", "synthesis"]:
        if not hasattr(generator, name):
            raise ExportError(path, f"G_ema has no '{name}': not a StyleGAN-family generator")
    return generator.eval().requires_grad_(False)


def multiply_add(a, b, c):
    """a * b + c in plain tensor ops: the official fma is a Python autograd.Function, which a
    TorchScript archive cannot hold."""
    return torch.addcmul(c, a, b)


def per_sample_modulated_conv2d(x, w, s, demodulate=True, padding=0, input_gain=None):
    """StyleGAN3's modulated convolution done per sample: modulate the input, convolve with the
    shared weight, demodulate the output. Equals the official op at batch 1; unlike it, no sample
    depends on the others (the official op normalises the styles over the whole batch and runs a
    grouped convolution with groups = batch size)."""
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean(dim=1, keepdim=True).rsqrt()
    input_scale = s
    if input_gain is not None:
        input_scale = s * input_gain
    x = F.conv2d(x * input_scale.to(x.dtype).unsqueeze(2).unsqueeze(3), w.to(x.dtype),
                 padding=padding)
    if demodulate:
        # |w * s|^2 summed over input channels and taps, for every (sample, output channel).
        dcoefs = (s.square() @ w.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
        x = x * dcoefs.to(x.dtype).unsqueeze(2).unsqueeze(3)
    return x


def takes_fused_modconv(synthesis: torch.nn.Module) -> bool:
    """StyleGAN2-family blocks accept fused_modconv; StyleGAN3-family layers do not."""
    for module in synthesis.modules():
        try:
            if "fused_modconv" in inspect.signature(module.forward).parameters:
                return True
        except (TypeError, ValueError):
            continue
    return False


@contextlib.contextmanager
def batch_independent_ops(synthesis: torch.nn.Module):
    """While active: the custom ops take their reference path (no CUDA plugin), fma is plain
    tensor ops and, for the StyleGAN3 family, modulated_conv2d is the per-sample form. Restores
    everything on exit."""
    saved = []
    for name in REFERENCE_OP_MODULES:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "_init"):
            saved.append((module, "_init", module._init))
            module._init = lambda: False
    fma_module = sys.modules.get(FUSED_MULTIPLY_ADD_MODULE)
    if fma_module is not None and hasattr(fma_module, "fma"):
        saved.append((fma_module, "fma", fma_module.fma))
        fma_module.fma = multiply_add
    if not takes_fused_modconv(synthesis):
        # Persistent classes are subclasses of the class rebuilt from source: walk the MRO to
        # reach the module whose global modulated_conv2d their forward calls.
        namespaces = {sys.modules[cls.__module__] for m in synthesis.modules()
                      for cls in type(m).__mro__ if cls.__module__ in sys.modules}
        for namespace in namespaces:
            if hasattr(namespace, "modulated_conv2d"):
                saved.append((namespace, "modulated_conv2d", namespace.modulated_conv2d))
                namespace.modulated_conv2d = per_sample_modulated_conv2d
    try:
        yield
    finally:
        for namespace, attribute, value in reversed(saved):
            setattr(namespace, attribute, value)


def margin_of(layer: torch.nn.Module) -> int:
    """Pixels on each side of a StyleGAN3/XL layer's map outside the image's sampling grid."""
    if not (hasattr(layer, "out_size") and hasattr(layer, "out_sampling_rate")):
        return 0
    size = int(torch.as_tensor(layer.out_size).reshape(-1)[0])
    return max((size - int(round(float(layer.out_sampling_rate)))) // 2, 0)


class MappingForTrace(torch.nn.Module):
    """z, one-hot c -> w at psi = 1 (the official mapping's first of num_ws identical rows)."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.mapping = generator.mapping

    def forward(self, z: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return self.mapping(z, onehot, truncation_psi=1, truncation_cutoff=None)[:, 0]


class SynthesisForTrace(torch.nn.Module):
    """w -> (image in [-1,1], cropped maps of the named layers), via forward hooks."""

    def __init__(self, generator, layer_names: List[str], zero_one_output: bool):
        super().__init__()
        self.synthesis = generator.synthesis
        self.num_ws = int(generator.num_ws)
        self.zero_one_output = zero_one_output
        self.synthesis_kwargs = {"noise_mode": "const", "force_fp32": True}
        if takes_fused_modconv(self.synthesis):
            self.synthesis_kwargs["fused_modconv"] = False
        self.captured: Dict[str, torch.Tensor] = {}
        self.layer_names = layer_names
        self.margins = []
        for name in layer_names:
            layer = self.synthesis.get_submodule(name)
            self.margins.append(margin_of(layer))
            layer.register_forward_hook(self._capture(name))

    def _capture(self, name: str):
        def hook(module, inputs, output):
            self.captured[name] = output[0] if isinstance(output, (tuple, list)) else output
        return hook

    def forward(self, w: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        self.captured.clear()
        ws = w.unsqueeze(1).repeat([1, self.num_ws, 1])
        image = self.synthesis(ws, **self.synthesis_kwargs).to(torch.float32)
        if self.zero_one_output:
            image = image * 2 - 1
        features = []
        for name, margin in zip(self.layer_names, self.margins):
            feature = self.captured[name].to(torch.float32)
            if margin > 0:
                feature = feature[:, :, margin:feature.shape[2] - margin,
                                  margin:feature.shape[3] - margin]
            features.append(feature)
        return image.clamp(-1, 1), features


class ExportedGenerator(torch.nn.Module):
    """The contract's face over the two traced networks; scripted, so class_names is kept."""

    z_dim: int
    w_dim: int
    num_classes: int
    resolution: int
    condition_width: int
    class_names: List[str]

    def __init__(self, mapping_trace, synthesis_trace, class_means: torch.Tensor,
                 dimensions: Dict[str, int], class_names: List[str]):
        super().__init__()
        self.mapping_network = mapping_trace
        self.synthesis_network = synthesis_trace
        self.register_buffer("w_avg", class_means)
        self.z_dim = dimensions["z_dim"]
        self.w_dim = dimensions["w_dim"]
        self.num_classes = dimensions["num_classes"]
        self.resolution = dimensions["resolution"]
        self.condition_width = dimensions["condition_width"]
        self.class_names = class_names

    @torch.jit.export
    def mapping(self, z: torch.Tensor, c: torch.Tensor, psi: float) -> torch.Tensor:
        onehot = F.one_hot(c, self.num_classes).to(z.dtype)[:, :self.condition_width]
        w = self.mapping_network(z, onehot)
        center = self.w_avg.index_select(0, c)
        return center + psi * (w - center)

    @torch.jit.export
    def synthesis(self, w: torch.Tensor) -> torch.Tensor:
        return self.synthesis_network(w)[0]

    @torch.jit.export
    def synthesis_features(self, w: torch.Tensor) -> List[torch.Tensor]:
        return self.synthesis_network(w)[1]

    @torch.jit.export
    def synthesis_with_features(self, w: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        image, features = self.synthesis_network(w)
        return image, features

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.synthesis(w)


def onehot_of(classes: torch.Tensor, num_classes: int, condition_width: int) -> torch.Tensor:
    return F.one_hot(classes, num_classes).to(torch.float32)[:, :condition_width]


def class_means(generator, mapping: MappingForTrace, dimensions: Dict[str, int], samples: int,
                seed: int, device: torch.device) -> Tuple[torch.Tensor, str]:
    """The per-class mean w: the pickle's own table when it has a trained one, else estimated
    from `samples` psi = 1 mappings per class with z drawn from a CPU generator seeded by seed."""
    num_classes, w_dim = dimensions["num_classes"], dimensions["w_dim"]
    table = getattr(generator.mapping, "w_avg", None)
    if (table is not None and table.dim() == 2 and tuple(table.shape) == (num_classes, w_dim)
            and bool(table.abs().sum() > 0)):
        return table.detach().to(device, torch.float32).clone(), "the pickle's per-class w_avg"
    random = torch.Generator().manual_seed(seed)
    means = torch.zeros(num_classes, w_dim, dtype=torch.float64)
    chunk = 1000
    for label in range(num_classes):
        total = torch.zeros(w_dim, dtype=torch.float64)
        for start in range(0, samples, chunk):
            count = min(chunk, samples - start)
            z = torch.randn(count, dimensions["z_dim"], generator=random).to(device)
            classes = torch.full([count], label, dtype=torch.int64, device=device)
            onehot = onehot_of(classes, num_classes, dimensions["condition_width"])
            total += mapping(z, onehot).double().sum(0).cpu()
        means[label] = total / samples
    return means.to(device, torch.float32), f"estimated from {samples} mappings per class"


def default_feature_layers(synthesis_module: SynthesisForTrace, resolution: int,
                           w_probe: torch.Tensor) -> List[str]:
    """The last layer whose cropped map is at most resolution/4 and the last at most
    resolution/2: a mid-resolution pair, coarse parts and finer ones."""
    synthesis = synthesis_module.synthesis
    sizes: Dict[str, int] = {}
    handles = []
    for name, layer in synthesis.named_children():
        def hook(module, inputs, output, name=name):
            output = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[1] > 3:
                sizes[name] = int(output.shape[2]) - 2 * margin_of(module)
        handles.append(layer.register_forward_hook(hook))
    with torch.no_grad():
        synthesis_module(w_probe)
    for handle in handles:
        handle.remove()
    chosen = []
    for target in [resolution // 4, resolution // 2]:
        fitting = [name for name, size in sizes.items() if size <= target]
        if fitting and fitting[-1] not in chosen:
            chosen.append(fitting[-1])
    if not chosen:
        chosen = list(sizes)[len(sizes) // 2:len(sizes) // 2 + 1]
    return chosen


def compare(label: str, outputs, references, tolerance: float, network: str) -> float:
    """Largest difference over tensors; an ExportError when it is above tolerance."""
    worst = max(max_abs_difference(a, b) for a, b in zip(outputs, references))
    print(f"  {label}: max abs difference {worst:.3g}")
    if not worst <= tolerance:
        raise ExportError(network, f"{label} differs from the eager model by {worst:.3g} "
                          f"(tolerance {tolerance:g})")
    return worst


def trace_and_check(mapping, synthesis, exported_parts, args, dimensions, device):
    """Traces mapping and synthesis at batch 1 (kept) and at 3 and 5 (checked only); every
    trace is compared with the official model run eagerly one sample at a time."""
    random = torch.Generator().manual_seed(args.seed + 1)
    batch = max(CHECK_BATCH_SIZES)
    z = torch.randn(batch, dimensions["z_dim"], generator=random).to(device)
    classes = (torch.arange(batch) % dimensions["num_classes"]).to(device)
    onehot = onehot_of(classes, dimensions["num_classes"], dimensions["condition_width"])
    with torch.no_grad():
        w_reference = torch.cat([mapping(z[i:i + 1], onehot[i:i + 1]) for i in range(batch)])
        w = w_reference + 0.5 * torch.randn(w_reference.shape, generator=random).to(device)
        per_sample = [synthesis(w[i:i + 1]) for i in range(batch)]
    image_reference = torch.cat([image for image, _ in per_sample])
    feature_reference = [torch.cat([features[k] for _, features in per_sample])
                         for k in range(len(per_sample[0][1]))]

    traces = {}
    with torch.no_grad(), batch_independent_ops(synthesis.synthesis):
        for size in CHECK_BATCH_SIZES:
            mapping_trace = torch.jit.trace(mapping, (z[:size], onehot[:size]), check_trace=False)
            synthesis_trace = torch.jit.trace(synthesis, (w[:size],), check_trace=False,
                                              strict=False)
            traces[size] = (mapping_trace, synthesis_trace)
            image, features = synthesis_trace(w[:size])
            compare(f"mapping traced at batch {size}", [mapping_trace(z[:size], onehot[:size])],
                    [w_reference[:size]], args.tolerance, args.network)
            compare(f"synthesis traced at batch {size}",
                    [image] + list(features),
                    [image_reference[:size]] + [f[:size] for f in feature_reference],
                    args.tolerance, args.network)
    exported = torch.jit.script(ExportedGenerator(*traces[1], *exported_parts))
    psi = 0.7
    center = exported.w_avg.index_select(0, classes)
    truncated_reference = center + psi * (w_reference - center)
    with torch.no_grad():
        for size in CHECK_BATCH_SIZES:
            image, features = exported.synthesis_with_features(w[:size])
            compare(f"export (batch-1 trace) mapping at batch {size}, psi {psi}",
                    [exported.mapping(z[:size], classes[:size], psi)],
                    [truncated_reference[:size]], args.tolerance, args.network)
            compare(f"export (batch-1 trace) synthesis at batch {size}",
                    [image] + list(features),
                    [image_reference[:size]] + [f[:size] for f in feature_reference],
                    args.tolerance, args.network)
        compare("export synthesis (image only) at batch 1", [exported.synthesis(w[:1])],
                [image_reference[:1]], args.tolerance, args.network)
    return exported


def parse_arguments():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""examples (the official code of the network's family on PYTHONPATH):
  PYTHONPATH=/path/to/stylegan2-ada-pytorch python3 tools/export_generator.py \\
      --network cifar10.pkl --output generator.pt --class-names cifar10.txt
  PYTHONPATH=/path/to/stylegan3 python3 tools/export_generator.py \\
      --network stylegan3-t-network.pkl --output generator.pt
  PYTHONPATH=/path/to/stylegan-xl python3 tools/export_generator.py \\
      --network imagenet64.pkl --output generator.pt --class-names imagenet.txt
Feature layers are names of G.synthesis children (StyleGAN2: b16, b32, ...; StyleGAN3/XL:
L5_36_512, ...); an unknown name lists the available ones.""")
    parser.add_argument("--network", required=True, help="official network pickle (G_ema)")
    parser.add_argument("--output", required=True, help="TorchScript file to write")
    parser.add_argument("--class-names", help="text file, one class name per line")
    parser.add_argument("--feature-layers",
                        help="comma-separated G.synthesis layers for synthesis_features "
                             "(default: the last at resolution/4 and the last at resolution/2)")
    parser.add_argument("--w-avg-samples", type=int, default=10000,
                        help="psi=1 mappings per class to estimate a class's mean w when the "
                             "pickle has no trained per-class table (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of that estimate and checks")
    parser.add_argument("--zero-one-output", action="store_true",
                        help="the network's images are in [0,1]: map them to [-1,1]")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="device to trace on (the export runs there)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest allowed |export - eager model| (default 1e-3)")
    args = parser.parse_args()
    if args.w_avg_samples < 1:
        parser.error("--w-avg-samples must be at least 1")
    return args


def main():
    args = parse_arguments()
    check_writable_output(args.output)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ExportError(args.network, "--device cuda but this PyTorch sees no CUDA device")
    started = time.time()
    generator = load_network(args.network).to(device)
    conditions = int(generator.c_dim)
    dimensions = {"z_dim": int(generator.z_dim), "w_dim": int(generator.w_dim),
                  "num_classes": max(conditions, 1), "condition_width": conditions,
                  "resolution": int(generator.img_resolution)}
    class_names = read_class_names(args.class_names, dimensions["num_classes"])
    mapping = MappingForTrace(generator)

    probe = torch.zeros(1, dimensions["w_dim"], device=device)
    layer_names = (args.feature_layers.split(",") if args.feature_layers else
                   default_feature_layers(SynthesisForTrace(generator, [], False),
                                          dimensions["resolution"], probe))
    available = [name for name, _ in generator.synthesis.named_children()]
    for name in layer_names:
        if name not in available:
            raise ExportError(args.network, f"no synthesis layer '{name}' "
                              f"(layers: {', '.join(available)})")
    synthesis = SynthesisForTrace(generator, layer_names, args.zero_one_output)

    with torch.no_grad():
        means, origin = class_means(generator, mapping, dimensions, args.w_avg_samples,
                                    args.seed, device)
    print(f"{args.network}: z_dim {dimensions['z_dim']}, w_dim {dimensions['w_dim']}, "
          f"{dimensions['num_classes']} classes, {dimensions['resolution']} px, num_ws "
          f"{int(generator.num_ws)}; class means {origin}; feature layers "
          f"{', '.join(f'{n} (margin {m})' for n, m in zip(layer_names, synthesis.margins))}")
    exported = trace_and_check(mapping, synthesis, (means, dimensions, class_names), args,
                               dimensions, device)
    try:
        save_atomically(exported, args.output)
    except RuntimeError as error:  # a Python call left in the traced graph
        raise ExportError(args.network, "the traced network cannot be saved as TorchScript: "
                          + str(error).strip().splitlines()[0])
    print(f"wrote {args.output} in {time.time() - started:.1f} s")


if __name__ == "__main__":
    run_main(main)
