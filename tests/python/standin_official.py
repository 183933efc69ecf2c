"""Small stand-ins for the official StyleGAN network pickles, with the traps of the real ones.

What they reproduce (the official StyleGAN3 / StyleGAN-XL code, in miniature):
  - classes rebuilt from source embedded in the pickle (official torch_utils.persistence): the
    rebuilt classes have no source file, so torch.jit.script fails on them;
  - a module-level modulated_conv2d(x, w, s, demodulate, padding, input_gain) that runs a grouped
    convolution with groups = int(batch size), baked into a trace, and normalises the styles
    over the whole batch;
  - a global w_avg only (G.mapping.w_avg, [w_dim]);
  - feature maps with margins around the sampling grid (layer.out_size, layer.out_sampling_rate);
  - c given as a one-hot [N, c_dim];
  - synthesis.forward(self, ws, **layer_kwargs), G.mapping(z, c, truncation_psi, truncation_cutoff),
    G.synthesis(ws, noise_mode='const', force_fp32=True), and G.z_dim, c_dim, w_dim,
    img_resolution, num_ws.
make_generator_pickle writes {'G_ema': G} like a training snapshot.
"""

import pickle
import sys
import types
import uuid

import torch

NETWORK_SOURCE = '''
import numpy as np
import torch
import torch.nn.functional as F
import standin_official


def modulated_conv2d(x, w, s, demodulate=True, padding=0, input_gain=None):
    batch_size = int(x.shape[0])
    out_channels, in_channels, kh, kw = w.shape
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    w = w.unsqueeze(0) * s.unsqueeze(1).unsqueeze(3).unsqueeze(4)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().unsqueeze(2).unsqueeze(3).unsqueeze(4)
    if input_gain is not None:
        w = w * input_gain
    x = x.reshape(1, -1, *x.shape[2:])
    x = F.conv2d(x, w.reshape(-1, in_channels, kh, kw), padding=padding, groups=batch_size)
    return x.reshape(batch_size, -1, *x.shape[2:])


class Mapping(standin_official.Persistent, torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.embed = torch.nn.Linear(c_dim, w_dim)
        self.fc0 = torch.nn.Linear(z_dim + w_dim, w_dim)
        self.fc1 = torch.nn.Linear(w_dim, w_dim)
        self.register_buffer("w_avg", torch.randn(w_dim))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        y = self.embed(c.to(torch.float32))
        x = torch.cat([x, y * (y.square().mean(1, keepdim=True) + 1e-8).rsqrt()], dim=1)
        x = self.fc1(F.leaky_relu(self.fc0(x), 0.2))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class Layer(standin_official.Persistent, torch.nn.Module):
    def __init__(self, w_dim, in_channels, out_channels, in_size, out_size, out_sampling_rate,
                 up, is_torgb=False):
        super().__init__()
        self.is_torgb, self.up = is_torgb, up
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.out_sampling_rate = out_sampling_rate
        self.in_size = in_size
        self.affine = torch.nn.Linear(w_dim, in_channels)
        kernel = 1 if is_torgb else 3
        self.weight = torch.nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.register_buffer("magnitude_ema", torch.ones([]) * 1.5)

    def forward(self, x, w, noise_mode="random", force_fp32=False, update_emas=False):
        assert noise_mode in ["random", "const", "none"]
        styles = self.affine(w)
        x = modulated_conv2d(x=x, w=self.weight, s=styles, demodulate=not self.is_torgb,
                             padding=0 if self.is_torgb else 1,
                             input_gain=self.magnitude_ema.rsqrt())
        if self.up > 1:
            x = F.interpolate(x, scale_factor=self.up, mode="bilinear", align_corners=False)
        trim = (x.shape[2] - int(self.out_size[0])) // 2
        if trim > 0:
            x = x[:, :, trim:x.shape[2] - trim, trim:x.shape[3] - trim]
        return x if self.is_torgb else F.leaky_relu(x, 0.2)


class Synthesis(standin_official.Persistent, torch.nn.Module):
    def __init__(self, w_dim, img_resolution, zero_one_output):
        super().__init__()
        self.w_dim, self.img_resolution, self.zero_one_output = w_dim, img_resolution, zero_one_output
        margin = 2
        self.const = torch.nn.Parameter(torch.randn(16, 8 + 2 * margin, 8 + 2 * margin))
        # (name, in channels, out channels, out size, sampling rate, upsampling)
        specs = [("L0_12_16", 16, 16, 12, 8, 1), ("L1_20_16", 16, 16, 20, 16, 2),
                 ("L2_32_16", 16, 16, 32, 32, 2), ("L3_32_3", 16, 3, 32, 32, 1)]
        self.layer_names = []
        for name, cin, cout, size, rate, up in specs:
            setattr(self, name, Layer(w_dim, cin, cout, None, size, rate, up, cout == 3))
            self.layer_names.append(name)
        self.num_ws = len(specs) + 1

    def forward(self, ws, **layer_kwargs):
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.const.unsqueeze(0).repeat([ws[0].shape[0], 1, 1, 1]) * (1 + ws[0][:, :1, None, None])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, **layer_kwargs)
        x = torch.tanh(x * 0.5)
        return (x + 1) / 2 if self.zero_one_output else x


class Generator(standin_official.Persistent, torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, zero_one_output=False):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = Synthesis(w_dim, img_resolution, zero_one_output)
        self.num_ws = self.synthesis.num_ws
        self.mapping = Mapping(z_dim, c_dim, w_dim, self.num_ws)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)
'''


def module_from_source(source: str) -> types.ModuleType:
    """Runs source as a fresh module under a unique name, as official persistence does."""
    module = types.ModuleType("_standin_module_" + uuid.uuid4().hex)
    sys.modules[module.__name__] = module
    exec(source, module.__dict__)
    return module


def rebuild(source: str, class_name: str, state: dict):
    """Unpickling: the class comes from the embedded source; a bare instance gets the state."""
    network_class = module_from_source(source).__dict__[class_name]
    instance = network_class.__new__(network_class)
    instance.__dict__.update(state)
    return instance


class Persistent:
    """Pickles an instance as its class's source plus its state, like official persistence."""

    def __reduce__(self):
        return rebuild, (NETWORK_SOURCE, type(self).__name__, dict(self.__dict__))


def make_generator(seed: int = 0, zero_one_output: bool = False) -> torch.nn.Module:
    torch.manual_seed(seed)
    generator_class = module_from_source(NETWORK_SOURCE).Generator
    return generator_class(z_dim=8, c_dim=3, w_dim=8, img_resolution=32, img_channels=3,
                           zero_one_output=zero_one_output).eval()


def make_generator_pickle(path: str, seed: int = 0, zero_one_output: bool = False) -> None:
    with open(path, "wb") as pickle_file:
        pickle.dump({"G_ema": make_generator(seed, zero_one_output)}, pickle_file)
