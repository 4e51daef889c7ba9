// Teacher pairs (image-methods spec §3.7): N (noise, teacher output, label) triples produced by
// a teacher's ODE, the training data of SlimFlow, DMD-style regression and MSD. Pair i takes
// its noise from a generator seeded by (seed, i) and the label i mod C, so generation is
// chunked, resumable and identical however it is split. Stored as safetensors: z, x (float32),
// y (int64) and metadata (teacher SHA-256, sampler, grid, steps, w, seed, n).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <string>
#include <vector>

#include "samplers/sampler.hpp"

namespace onestep {

struct PairRequest {
    std::string checkpoint;   // teacher checkpoint or run directory
    std::string out;          // the pairs file
    int64_t n = 10000;
    SampleOptions options;    // sampler, steps, grid, guidance
    uint64_t seed = 0;
    int64_t chunk = 256;      // pairs per resumable chunk
    c10::Device device = c10::Device(c10::kCPU);
};

// Writes OUT atomically. Finished chunks live in OUT.partial/ until the end, so an interrupted
// run continues where it stopped; a partial folder made with other settings is a UserError.
void write_teacher_pairs(const PairRequest& request);

struct TeacherPairs {
    at::Tensor z;   // [n, ...]
    at::Tensor x;   // [n, ...]
    at::Tensor y;   // int64 [n]
    int64_t num_classes = 0;                 // C of the teacher (0: unconditional, labels all 0)
    std::vector<std::string> class_names;    // when the teacher had names
    std::map<std::string, std::string> metadata;
};

// Validates the three tensors' shapes against each other; UserError naming PATH otherwise.
TeacherPairs read_teacher_pairs(const std::string& path);

// Mean ||G(z_i, y_i) - x_i|| over the first N of PAIRS (named NAME in errors): how far SAMPLER's
// noise-to-sample map is from the teacher's that made them (spec §4.1, for methods that keep the
// teacher's coupling). UserError when shapes or class counts differ or there are no pairs.
double paired_error(Sampler& sampler, const TeacherPairs& pairs, const std::string& name, int64_t n,
                    const SampleOptions& options, const c10::Device& device);

// The noise of pair INDEX under SEED, shaped SAMPLE_SHAPE.
at::Tensor pair_noise(uint64_t seed, int64_t index, const std::vector<int64_t>& sample_shape);

}  // namespace onestep
