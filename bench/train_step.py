#!/usr/bin/python3
"""The Python PyTorch reference for bench/train_step.cpp.

The same U-Net and DiT as models/unet.cpp and models/dit.cpp (layers, widths, registration order,
zero-initialisations; the parameter count must equal the C++ one), the same flow-matching step as
models/teacher.cpp with the trainer's optimize sequence and EMA update, on a fixed batch; prints
one JSON line. Run with Debian's interpreter (/usr/bin/python3, torch 1.13: the same libtorch).
With --device cuda the step runs on the GPU (timed up to a synchronize), as in the C++ benchmark.
"""
import argparse
import ctypes
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

# configs/fmnist/flow.yaml over the defaults of network_options() and trainer_options().
DEFAULT_CONFIG = {
    "seed": 1,
    "model.arch": "unet",
    "model.unet.channels": 32,
    "model.unet.channel_mult": [1, 2, 2],
    "model.unet.res_blocks": 1,
    "model.unet.attention_resolutions": [8],
    "model.unet.dropout": 0.1,
    "model.unet.groups": 8,
    "model.unet.heads": 1,
    "model.dit.patch": 4,
    "model.dit.dim": 128,
    "model.dit.depth": 6,
    "model.dit.heads": 4,
    "model.dit.mlp_ratio": 4.0,
    "optim.name": "adam",
    "optim.lr": 2.0e-4,
    "optim.beta1": 0.9,
    "optim.beta2": 0.999,
    "optim.eps": 1e-8,
    "optim.weight_decay": 0.0,
    "optim.grad_clip": 1.0,
    "ema.decay": 0.999,
    "ema.warmup": True,
    "teacher.p_uncond": 0.1,
    "teacher.t_dist": "uniform",
    "teacher.logit_mean": 0.0,
    "teacher.logit_std": 1.0,
}
IMAGE_SHAPE = (1, 32, 32)
NUM_CLASSES = 10
TIME_FEATURES = 128


# ----- models/network.cpp ------------------------------------------------------------------

def timestep_features(t, dim, scale=1000.0, max_period=10000.0):
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float, device=t.device) / half)
    angles = (scale * t.float()).unsqueeze(1) * frequencies.unsqueeze(0)
    features = torch.cat([torch.cos(angles), torch.sin(angles)], 1)
    if dim % 2 == 1:
        features = torch.cat([features, torch.zeros_like(features[:, :1])], 1)
    return features


class ConditionEmbedding(nn.Module):
    def __init__(self, dim, num_classes):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(TIME_FEATURES, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label_embedding = nn.Embedding(num_classes + 1, dim) if num_classes > 0 else None

    def forward(self, t, labels):
        embedding = self.time_mlp(timestep_features(t, TIME_FEATURES))
        if self.label_embedding is not None:
            embedding = embedding + self.label_embedding(labels)
        return embedding


def zero_parameters(module):
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.zero_()


# ----- models/unet.cpp ---------------------------------------------------------------------

def conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


def conv1x1(in_channels, out_channels):
    return nn.Conv2d(in_channels, out_channels, 1)


class ResBlock(nn.Module):
    def __init__(self, in_channels, out_channels, embedding_dim, groups, dropout):
        super().__init__()
        self.norm_in = nn.GroupNorm(groups, in_channels)
        self.conv_in = conv3x3(in_channels, out_channels)
        self.modulation = nn.Linear(embedding_dim, 2 * out_channels)
        self.norm_out = nn.GroupNorm(groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = conv3x3(out_channels, out_channels)
        self.skip = conv1x1(in_channels, out_channels) if in_channels != out_channels else None
        zero_parameters(self.conv_out)

    def forward(self, x, embedding):
        h = self.conv_in(F.silu(self.norm_in(x)))
        scale, shift = self.modulation(embedding).unsqueeze(-1).unsqueeze(-1).chunk(2, 1)
        h = self.norm_out(h) * (1 + scale) + shift
        h = self.conv_out(self.dropout(F.silu(h)))
        return (x if self.skip is None else self.skip(x)) + h


class AttentionBlock(nn.Module):
    def __init__(self, channels, groups, heads):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = conv1x1(channels, 3 * channels)
        self.output = conv1x1(channels, channels)
        zero_parameters(self.output)

    def forward(self, x):
        batch, channels, height, width = x.shape
        head_dim = channels // self.heads
        q, k, v = (self.qkv(self.norm(x)).reshape(batch, 3, self.heads, head_dim, height * width)
                   .transpose(-1, -2).unbind(1))
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim), -1)
        mixed = torch.matmul(weights, v).transpose(-1, -2).reshape(batch, channels, height, width)
        return x + self.output(mixed)


class DownLevel(nn.Module):
    def __init__(self, in_channels, out_channels, res_blocks, attention, downsample, settings):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.attentions = nn.ModuleList()
        for i in range(res_blocks):
            self.blocks.append(ResBlock(in_channels if i == 0 else out_channels, out_channels, **settings["block"]))
            if attention:
                self.attentions.append(AttentionBlock(out_channels, **settings["attention"]))
        self.downsample = conv3x3(out_channels, out_channels, 2) if downsample else None

    def forward(self, h, embedding, skips):
        for i, block in enumerate(self.blocks):
            h = block(h, embedding)
            if len(self.attentions) > 0:
                h = self.attentions[i](h)
            skips.append(h)
        if self.downsample is not None:
            h = self.downsample(h)
            skips.append(h)
        return h


class UpLevel(nn.Module):
    def __init__(self, in_channels, skip_channels, out_channels, attention, upsample, settings):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.attentions = nn.ModuleList()
        channels = in_channels
        for skip in skip_channels:
            self.blocks.append(ResBlock(channels + skip, out_channels, **settings["block"]))
            if attention:
                self.attentions.append(AttentionBlock(out_channels, **settings["attention"]))
            channels = out_channels
        self.upsample = conv3x3(out_channels, out_channels) if upsample else None

    def forward(self, h, embedding, skips):
        for i, block in enumerate(self.blocks):
            h = block(torch.cat([h, skips.pop()], 1), embedding)
            if len(self.attentions) > 0:
                h = self.attentions[i](h)
        if self.upsample is not None:
            h = self.upsample(F.interpolate(h, scale_factor=(2.0, 2.0), mode="nearest"))
        return h


class UNet(nn.Module):
    def __init__(self, config, image_shape, num_classes):
        super().__init__()
        image_channels, height, _ = image_shape
        base = config["model.unet.channels"]
        channel_mult = config["model.unet.channel_mult"]
        res_blocks = config["model.unet.res_blocks"]
        attention_resolutions = config["model.unet.attention_resolutions"]
        embedding_dim = 4 * base
        groups = config["model.unet.groups"]
        settings = {
            "block": {"embedding_dim": embedding_dim, "groups": groups, "dropout": config["model.unet.dropout"]},
            "attention": {"groups": groups, "heads": config["model.unet.heads"]},
        }
        level_count = len(channel_mult)
        level_resolutions = [height >> level for level in range(level_count)]

        self.embedding = ConditionEmbedding(embedding_dim, num_classes)
        self.input_conv = conv3x3(image_channels, base)
        skip_channels = [base]
        self.down = nn.ModuleList()
        channels = base
        for level in range(level_count):
            out_channels = base * channel_mult[level]
            downsample = level + 1 < level_count
            attention = level_resolutions[level] in attention_resolutions
            self.down.append(DownLevel(channels, out_channels, res_blocks, attention, downsample, settings))
            skip_channels += [out_channels] * res_blocks
            if downsample:
                skip_channels.append(out_channels)
            channels = out_channels

        self.middle_in = ResBlock(channels, channels, **settings["block"])
        self.middle_attention = AttentionBlock(channels, **settings["attention"])
        self.middle_out = ResBlock(channels, channels, **settings["block"])

        self.up = nn.ModuleList()
        for level in reversed(range(level_count)):
            out_channels = base * channel_mult[level]
            level_skips = [skip_channels.pop() for _ in range(res_blocks + 1)]
            attention = level_resolutions[level] in attention_resolutions
            self.up.append(UpLevel(channels, level_skips, out_channels, attention, level > 0, settings))
            channels = out_channels
        assert not skip_channels, "U-Net decoder left encoder outputs unused"

        self.output_norm = nn.GroupNorm(groups, channels)
        self.output_conv = conv3x3(channels, image_channels)
        zero_parameters(self.output_conv)

    def forward(self, x, t, labels):
        embedding = F.silu(self.embedding(t, labels))
        skips = []
        h = self.input_conv(x)
        skips.append(h)
        for level in self.down:
            h = level(h, embedding, skips)
        h = self.middle_in(h, embedding)
        h = self.middle_attention(h)
        h = self.middle_out(h, embedding)
        for level in self.up:
            h = level(h, embedding, skips)
        return self.output_conv(F.silu(self.output_norm(h)))


# ----- models/dit.cpp ----------------------------------------------------------------------

NORM_EPSILON = 1e-6
EMBEDDING_INIT_STD = 0.02


def sincos_1d(positions, dim):
    omega = torch.arange(dim // 2, dtype=torch.double) / (dim / 2.0)
    omega = 1.0 / torch.pow(10000.0, omega)
    angles = positions.double().unsqueeze(1) * omega.unsqueeze(0)
    return torch.cat([torch.sin(angles), torch.cos(angles)], 1)


def sincos_2d(rows, cols, dim):
    row = torch.arange(rows, dtype=torch.double).repeat_interleave(cols)
    col = torch.arange(cols, dtype=torch.double).repeat(rows)
    return torch.cat([sincos_1d(col, dim // 2), sincos_1d(row, dim // 2)], 1).float().unsqueeze(0)


def layer_norm(x):
    return F.layer_norm(x, (x.size(-1),), eps=NORM_EPSILON)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_hidden):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.projection = nn.Linear(dim, dim)
        self.mlp_in = nn.Linear(dim, mlp_hidden)
        self.mlp_out = nn.Linear(mlp_hidden, dim)
        self.modulation = nn.Linear(dim, 6 * dim)

    def attention(self, x):
        batch, tokens, dim = x.shape
        head_dim = dim // self.heads
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        weights = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(head_dim), -1)
        mixed = torch.matmul(weights, v).transpose(1, 2).reshape(batch, tokens, dim)
        return self.projection(mixed)

    def forward(self, x, condition):
        mod = self.modulation(condition).chunk(6, 1)
        x = x + mod[2].unsqueeze(1) * self.attention(modulate(layer_norm(x), mod[0], mod[1]))
        hidden = F.gelu(self.mlp_in(modulate(layer_norm(x), mod[3], mod[4])), approximate="tanh")
        return x + mod[5].unsqueeze(1) * self.mlp_out(hidden)


class DiT(nn.Module):
    def __init__(self, config, image_shape, num_classes):
        super().__init__()
        self.channels, height, width = image_shape
        self.patch = config["model.dit.patch"]
        dim = config["model.dit.dim"]
        depth = config["model.dit.depth"]
        heads = config["model.dit.heads"]
        self.rows = height // self.patch
        self.cols = width // self.patch
        mlp_hidden = max(1, int(math.floor(dim * config["model.dit.mlp_ratio"] + 0.5)))   # std::llround

        self.patch_embedding = nn.Conv2d(self.channels, dim, self.patch, stride=self.patch)
        self.register_buffer("positions", sincos_2d(self.rows, self.cols, dim))
        self.embedding = ConditionEmbedding(dim, num_classes)
        self.blocks = nn.ModuleList([DiTBlock(dim, heads, mlp_hidden) for _ in range(depth)])
        self.final_modulation = nn.Linear(dim, 2 * dim)
        self.final_linear = nn.Linear(dim, self.patch * self.patch * self.channels)
        self.initialize()

    def initialize(self):
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.xavier_uniform_(module.weight)
                    module.bias.zero_()
            weight = self.patch_embedding.weight
            nn.init.xavier_uniform_(weight.view(weight.size(0), -1))
            self.patch_embedding.bias.zero_()
            for parameter in self.embedding.time_mlp.parameters():
                if parameter.dim() == 2:
                    nn.init.normal_(parameter, 0.0, EMBEDDING_INIT_STD)
            if self.embedding.label_embedding is not None:
                nn.init.normal_(self.embedding.label_embedding.weight, 0.0, EMBEDDING_INIT_STD)
            for block in self.blocks:
                zero_parameters(block.modulation)
            zero_parameters(self.final_modulation)
            zero_parameters(self.final_linear)

    def forward(self, x, t, labels):
        batch = x.size(0)
        condition = F.silu(self.embedding(t, labels))
        h = self.patch_embedding(x).flatten(2).transpose(1, 2) + self.positions
        for block in self.blocks:
            h = block(h, condition)
        shift, scale = self.final_modulation(condition).chunk(2, 1)
        h = self.final_linear(modulate(layer_norm(h), shift, scale))
        return (h.reshape(batch, self.rows, self.cols, self.patch, self.patch, self.channels)
                .permute(0, 5, 1, 3, 2, 4)
                .reshape(batch, self.channels, self.rows * self.patch, self.cols * self.patch))


def make_network(config):
    arch = config["model.arch"]
    if arch == "unet":
        return UNet(config, IMAGE_SHAPE, NUM_CLASSES)
    if arch == "dit":
        return DiT(config, IMAGE_SHAPE, NUM_CLASSES)
    raise SystemExit(f"error: model.arch={arch}: this reference has unet and dit")


# ----- FLOPs and the GEMM peak (the same rule as bench/bench_support.cpp) ------------------

class GemmFlopCounter(TorchDispatchMode):
    """2 x multiply-adds of every convolution and matrix product dispatched while active."""

    PRODUCTS = {"mm", "addmm", "bmm", "baddbmm", "addbmm"}

    def __init__(self):
        super().__init__()
        self.flops = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        if name == "convolution":
            weight = args[1]
            self.flops += 2.0 * out.numel() * (weight.numel() // weight.size(0))
        elif name in self.PRODUCTS:
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            a, b = tensors[-2], tensors[-1]
            self.flops += 2.0 * a.numel() * b.size(-1)
        return out


def forward_flops_per_image(net, batch=4):
    device = next(net.parameters()).device
    with torch.no_grad():
        x = torch.randn(batch, *IMAGE_SHAPE, device=device)
        t = torch.rand(batch, device=device)
        labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
        counter = GemmFlopCounter()
        with counter:
            net(x, t, labels)
    return counter.flops / batch


def synchronize(device):
    """Waits for the work queued on DEVICE (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_gemm_peak(size, iterations, device=torch.device("cpu")):
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    c = torch.empty(size, size, device=device)
    for _ in range(2):
        torch.mm(a, b, out=c)
    synchronize(device)
    gflops = []
    flops = 2.0 * size ** 3
    for _ in range(iterations):
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        synchronize(device)
        gflops.append(flops / (time.perf_counter() - start) / 1e9)
    return {"bench": "gemm_peak", "impl": "python", "size": size, "threads": torch.get_num_threads(),
            "iterations": iterations, "gflops": max(gflops), "median_gflops": statistics.median(gflops)}


# ----- the step: models/teacher.cpp flow_loss, core/trainer.cpp optimize and the EMA -------

class FlowTrainer:
    def __init__(self, config, channels_last, bf16_autocast, grads_to_none, device=torch.device("cpu")):
        self.config = config
        self.device = device
        self.net = make_network(config)
        self.ema_net = make_network(config)   # make_sibling(), then Ema copies the weights
        self.ema_net.load_state_dict(self.net.state_dict())
        if device.type != "cpu":
            self.net = self.net.to(device)
            self.ema_net = self.ema_net.to(device)
        for parameter in self.ema_net.parameters():
            parameter.requires_grad_(False)
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
            self.ema_net = self.ema_net.to(memory_format=torch.channels_last)
        if config["optim.name"] == "adamw":
            make = torch.optim.AdamW
        else:
            make = torch.optim.Adam
        self.base_lr = config["optim.lr"]
        self.optimizer = make(self.net.parameters(), lr=self.base_lr,
                              betas=(config["optim.beta1"], config["optim.beta2"]),
                              eps=config["optim.eps"], weight_decay=config["optim.weight_decay"])
        self.parameters = list(self.net.parameters())
        self.p_uncond = config["teacher.p_uncond"]
        self.grad_clip = config["optim.grad_clip"]
        self.decay = config["ema.decay"]
        self.ema_warmup = config["ema.warmup"]
        self.bf16_autocast = bf16_autocast
        self.grads_to_none = grads_to_none
        self.ema_pairs = list(zip(self.ema_net.parameters(), self.net.parameters()))
        self.buffer_pairs = list(zip(self.ema_net.buffers(), self.net.buffers()))

    def drop_labels(self, labels):
        if self.p_uncond <= 0:
            return labels
        drop = torch.rand(labels.size(0), device=labels.device) < self.p_uncond
        return torch.where(drop, torch.full_like(labels, NUM_CLASSES), labels)

    def sample_times(self, n):
        if self.config["teacher.t_dist"] == "logit-normal":
            return torch.sigmoid(self.config["teacher.logit_mean"]
                                 + self.config["teacher.logit_std"] * torch.randn(n, device=self.device))
        return torch.rand(n, device=self.device)

    def flow_loss(self, x, labels):
        z = torch.randn_like(x)
        t = self.sample_times(x.size(0))
        tb = t.view(-1, *([1] * (x.dim() - 1)))
        x_t = (1 - tb) * z + tb * x   # x_t = (1-t) z + t x
        return (self.net(x_t, t, labels) - (x - z)).pow(2).mean()   # target v = x - z

    def step(self, step, x, y, times=None):
        started = time.perf_counter()
        for group in self.optimizer.param_groups:
            group["lr"] = self.base_lr
        self.net.train()
        labels = self.drop_labels(y)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16_autocast):
            loss = self.flow_loss(x, labels)
        marks = [started, time.perf_counter()]
        self.optimizer.zero_grad(set_to_none=self.grads_to_none)
        loss_value = loss.item()
        marks.append(time.perf_counter())
        if not math.isfinite(loss_value):
            raise SystemExit("error: the benchmark's loss is not finite")
        loss.backward()
        marks.append(time.perf_counter())
        max_norm = self.grad_clip if self.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.parameters, max_norm))
        marks.append(time.perf_counter())
        if not math.isfinite(norm):
            raise SystemExit("error: the benchmark's gradient norm is not finite")
        self.optimizer.step()
        marks.append(time.perf_counter())
        decay = min(self.decay, (1.0 + step) / (10.0 + step)) if self.ema_warmup else self.decay
        with torch.no_grad():
            for shadow, online in self.ema_pairs:   # theta_ema <- decay theta_ema + (1 - decay) theta
                shadow.mul_(decay).add_(online, alpha=1.0 - decay)
            for shadow, online in self.buffer_pairs:
                shadow.copy_(online)
        marks.append(time.perf_counter())
        if times is not None:
            for name, begin, end in zip(("forward", "zero_grad", "backward", "clip", "optimizer", "ema"),
                                        marks[:-1], marks[1:]):
                times[name] = times.get(name, 0.0) + end - begin
        return loss_value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["train", "gemm", "describe"], default="train")
    parser.add_argument("--model", choices=["unet", "dit"], default="unet")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--config-json", default="",
                        help="resolved keys from `onestep_bench_train_step --mode describe` (reference_config)")
    parser.add_argument("--expect-params", type=int, default=0,
                        help="fail unless the network has exactly this many parameters (the C++ count)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gemm-size", type=int, default=2048)
    parser.add_argument("--gemm-iterations", type=int, default=20)
    parser.add_argument("--no-gemm", action="store_true", help="skip the GEMM peak after training")
    parser.add_argument("--phases", action="store_true", help="also time the parts of the step apart")
    parser.add_argument("--channels-last", action="store_true", help="variant: channels-last weights and batch")
    parser.add_argument("--bf16-autocast", action="store_true", help="variant: forward under CPU bf16 autocast")
    parser.add_argument("--grads-to-none", action="store_true", help="variant: zero_grad(set_to_none=True)")
    parser.add_argument("--keep-freed-memory", action="store_true",
                        help="variant: glibc malloc keeps freed memory (no mmap'd blocks, no heap trimming)")
    args = parser.parse_args()

    if args.keep_freed_memory:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)    # M_MMAP_MAX
        libc.mallopt(-1, -1)   # M_TRIM_THRESHOLD: never trim

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"error: --device {args.device}: expected cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device}: this torch has no usable CUDA device")
    if device.type == "cuda" and args.bf16_autocast:
        raise SystemExit(f"error: --bf16-autocast is the CPU autocast; it is not available with --device {args.device}")
    if args.mode == "gemm":
        peak = measure_gemm_peak(args.gemm_size, args.gemm_iterations, device)
        if device.type != "cpu":
            peak["device"] = str(device)
        print(json.dumps(peak), flush=True)
        return 0

    config = dict(DEFAULT_CONFIG)
    config["model.arch"] = args.model
    if args.config_json:
        config.update(json.loads(args.config_json))
        if config["model.arch"] != args.model:
            raise SystemExit(f"error: --config-json has model.arch={config['model.arch']}, --model is {args.model}")
    torch.manual_seed(config["seed"])
    trainer = FlowTrainer(config, args.channels_last, args.bf16_autocast, args.grads_to_none, device)
    params = sum(p.numel() for p in trainer.net.parameters())
    if args.expect_params and params != args.expect_params:
        raise SystemExit(f"error: the Python {args.model} has {params} parameters, the C++ one {args.expect_params}: "
                         "the architectures differ, so the comparison would be meaningless")
    forward_flops = forward_flops_per_image(trainer.net)
    line = {"bench": "train_step", "impl": "python", "model": args.model, "params": params, "batch": args.batch,
            "threads": args.threads, "forward_gflop_per_image": forward_flops / 1e9,
            "train_gflop_per_image": 3 * forward_flops / 1e9}
    if device.type != "cpu":
        line["device"] = str(device)
    if args.mode == "describe":
        line["bench"] = "describe"
        print(json.dumps(line), flush=True)
        return 0

    # A fixed batch of images in [-1, 1] with random labels stands in for the data loader.
    x = torch.rand(args.batch, *IMAGE_SHAPE) * 2 - 1
    y = torch.randint(0, NUM_CLASSES, (args.batch,))
    if device.type != "cpu":
        x, y = x.to(device), y.to(device)
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times = {} if args.phases else None
    step_seconds, losses = [], []
    for step in range(args.warmup + args.steps):
        timed = step >= args.warmup
        started = time.perf_counter()
        loss = trainer.step(step, x, y, times if timed else None)
        synchronize(device)
        if timed:
            step_seconds.append(time.perf_counter() - started)
            losses.append(loss)
    total = sum(step_seconds)
    images = args.batch * args.steps
    line.update({
        "warmup": args.warmup, "steps": args.steps,
        "variant": {"channels_last": args.channels_last, "bf16_autocast": args.bf16_autocast,
                    "grads_to_none": args.grads_to_none, "keep_freed_memory": args.keep_freed_memory,
                    "interop_threads": torch.get_num_interop_threads(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "")},
        "images_per_s": images / total,
        "ms_per_step": 1e3 * total / args.steps,
        "median_ms_per_step": 1e3 * statistics.median(step_seconds),
        "median_images_per_s": args.batch / statistics.median(step_seconds),
        "achieved_gflops": 3 * forward_flops * images / total / 1e9,
        "loss_first": losses[0], "loss_last": losses[-1], "loss_mean": statistics.fmean(losses),
    })
    if times is not None:
        line["phase_ms"] = {name: 1e3 * seconds / args.steps for name, seconds in times.items()}
    if not args.no_gemm:
        peak = measure_gemm_peak(args.gemm_size, args.gemm_iterations, device)
        line["gemm_gflops"] = peak["gflops"]
        line["fraction_of_gemm_peak"] = line["achieved_gflops"] / peak["gflops"]
    print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
