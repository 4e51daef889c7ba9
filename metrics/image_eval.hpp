// `onestep eval fid|kid|prdc|is|cacc`: sample or read images, extract features, compute the
// metric against real data, and always the same metric between two disjoint real sets of the
// same N (the baseline), printed on one line and stored as JSON.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

#include "samplers/sampler.hpp"

namespace onestep {

struct ImageEvalRequest {
    std::string metric;       // fid, kid, prdc, is, cacc
    std::string features;     // classifier:CKPT | inception:PATH[@mode]
    std::string fake;         // ckpt:PATH | DIR
    std::string real = "fashion-mnist:test";   // NAME:SPLIT | DIR | STATS (.safetensors/.npz, fid only)
    int64_t n = 2000;
    SampleOptions options;    // for ckpt: fakes
    uint64_t seed = 0;
    std::string out;          // JSON path; empty: the run's eval/ folder for ckpt: fakes
    std::string cache_dir;    // reference statistics cache; empty: the data cache
    std::string save_stats;   // also write the real side's statistics here (.safetensors or pytorch-fid .npz)
    bool baseline = true;
    c10::Device device = c10::Device(c10::kCPU);
};

// Prints the result line(s) to stdout, writes the JSON record, and returns the JSON text.
std::string run_image_eval(const ImageEvalRequest& request);

}  // namespace onestep
