// Pieces shared by the benchmarks: the flow teacher's config for the U-Net or the DiT, a FLOP
// counter for convolutions and matrix products, this machine's GEMM peak, and small statistics.
//
//   Config config = flow_config("dit", "", {});             // configs/fmnist/flow.yaml, model.arch=dit
//   double flops = forward_flops_per_image(*net, shape, 8);  // 2 x multiply-adds of one forward
//   GemmPeak peak = measure_gemm_peak(2048, 20);             // float32 matmul GFLOP/s, these threads
#pragma once
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/options.hpp"
#include "models/network.hpp"

namespace onestep::bench {

// The images every benchmark uses: Fashion-MNIST padded to 32x32, 10 classes.
const NetworkShape& fmnist_shape();

// The resolved options of the "flow" method for MODEL ("unet" or "dit"). CONFIG_PATH empty means
// configs/fmnist/flow-MODEL.yaml when it exists, else configs/fmnist/flow.yaml with model.arch=MODEL
// (placed before OVERRIDES). USED_PATH receives the file read.
Config flow_config(const std::string& model, const std::string& config_path, const std::vector<std::string>& overrides,
                   std::string* used_path);

// The keys of CONFIG that the Python reference needs to build the same net and step (model.*,
// optim.*, ema.*, teacher.*, seed) as a JSON object.
nlohmann::json reference_keys(const Config& config);

// While alive, adds up 2 x multiply-adds of every convolution and matrix product (mm, addmm, bmm,
// baddbmm, addbmm) that this thread dispatches; products called from inside another counted op
// are not counted twice. Elementwise work, norms and softmax are not counted.
class GemmFlopCounter {
  public:
    GemmFlopCounter();
    ~GemmFlopCounter();
    GemmFlopCounter(const GemmFlopCounter&) = delete;
    GemmFlopCounter& operator=(const GemmFlopCounter&) = delete;
    double flops() const;

  private:
    uint64_t handle_;
};

// FLOPs of one forward of NET per image, counted on a random batch of BATCH images.
double forward_flops_per_image(VelocityNet& net, const NetworkShape& shape, int64_t batch);

struct GemmPeak {
    int64_t size = 0;
    int64_t iterations = 0;
    double best_gflops = 0;     // the fastest product: the peak
    double median_gflops = 0;
};

// Times ITERATIONS float32 products of two SIZE x SIZE matrices on DEVICE (after two untimed
// ones), each up to a device synchronize; on the CPU with the intra-op threads in force.
GemmPeak measure_gemm_peak(int64_t size, int64_t iterations, const c10::Device& device = c10::Device(c10::kCPU));

// Waits for the work queued on DEVICE (nothing to wait for on the CPU).
void synchronize(const c10::Device& device);

double median(std::vector<double> values);
double seconds_since(const std::chrono::steady_clock::time_point& start);

}  // namespace onestep::bench
