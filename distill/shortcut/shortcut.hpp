// Shortcut models (Frans, Hafner, Levine, Abbeel, ICLR 2025; image-methods spec §5): one network
// s(x_t, t, l, y) conditioned on the step-size level l (d = 2^-l) predicts the average velocity
// over a jump of d. The finest level L = log2 M is trained by flow matching; every coarser level
// by self-consistency: one jump of d equals two jumps of d/2 taken by the EMA network. One
// training phase from scratch, no teacher; sampling in any power-of-two number of steps 1..M.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace onestep {

class VelocityNet;

struct ShortcutSettings {
    int64_t max_steps = 128;           // M, a power of two: the finest step is d = 1/M
    double bootstrap_fraction = 0.25;  // f_b: share of each batch trained by self-consistency
    double p_uncond = 0.1;             // label dropout of the flow items (0 when unconditional)
    double bootstrap_cfg = 1.0;        // w_b: guidance built into the targets of level L-1 (1: none)
    double target_clip = 4.0;          // x_mid and the bootstrap targets are clipped to +-this
    int64_t num_classes = 0;           // C; label C is the null label
    std::string option_prefix = "shortcut";   // errors name <prefix>.max_steps and <prefix>.bootstrap_fraction

    int64_t flow_level() const;        // L = log2 M
};

// The self-consistency batch: network inputs for all B items (bootstrap items first) and the
// regression targets. Targets carry no gradient.
struct ShortcutBatch {
    at::Tensor x_t, t, labels, levels, targets;
    int64_t bootstrap_count = 0;
};

// B_b = round(f_b B). A UserError when B_b < L (some level would be missing from a batch) or
// when no flow items would remain.
int64_t shortcut_bootstrap_count(int64_t batch_size, const ShortcutSettings& settings);

// Levels (j + offset) mod L for j = 0..count-1: every level 0..L-1 in every batch, counts
// differing by at most one.
at::Tensor round_robin_levels(int64_t count, int64_t flow_level, int64_t offset);

// clip((v1 + v2) / 2) with v1 = s(x_t, t, l+1, y), x_mid = clip(x_t + (d/2) v1),
// v2 = s(x_mid, t + d/2, l+1, y), d = 2^-l; for items at level L-1 and bootstrap_cfg != 1, v1
// and v2 are guided velocities v_u + w (v_c - v_u). TARGET_NET should be the EMA copy in eval mode.
at::Tensor bootstrap_targets(VelocityNet& target_net, const at::Tensor& x_t, const at::Tensor& t,
                             const at::Tensor& labels, const at::Tensor& levels, const ShortcutSettings& settings);

// Splits (x, y) into B_b bootstrap items and B - B_b flow items (disjoint slices) and draws
// their levels, times and noise from libtorch's generator (spec §5, steps 1-3). NOISE, when
// given, is the prior sample z paired with each item instead of N(0, I).
ShortcutBatch make_shortcut_batch(const at::Tensor& x, const at::Tensor& y, VelocityNet& target_net,
                                  const ShortcutSettings& settings, const at::Tensor& noise = at::Tensor());

void register_shortcut_method();

}  // namespace onestep
