// The benchmarks' shared config building, FLOP counting (through ATen's RecordFunction
// callbacks, so the count follows the ops really dispatched) and GEMM peak.
#include "bench/bench_support.hpp"

#include <ATen/record_function.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/registry.hpp"
#include "core/trainer.hpp"

namespace onestep::bench {

const NetworkShape& fmnist_shape() {
    static const NetworkShape shape{{1, 32, 32}, 10, 0};
    return shape;
}

Config flow_config(const std::string& model, const std::string& config_path, const std::vector<std::string>& overrides,
                   std::string* used_path) {
    namespace fs = std::filesystem;
    std::string path = config_path;
    std::vector<std::string> all_overrides;
    if (path.empty()) {
        fs::path configs = fs::path(ONESTEP_SOURCE_DIR) / "configs" / "fmnist";
        fs::path own = configs / ("flow-" + model + ".yaml");
        if (model != "unet" && fs::exists(own)) {
            path = own.string();
        } else {
            path = (configs / "flow.yaml").string();
            all_overrides.push_back("model.arch=" + model);
        }
    }
    all_overrides.insert(all_overrides.end(), overrides.begin(), overrides.end());
    if (used_path != nullptr) *used_path = path;
    return resolve_config(training_options(find_method("flow")), path, all_overrides);
}

nlohmann::json reference_keys(const Config& config) {
    nlohmann::json keys = nlohmann::json::object();
    for (const auto& [key, value] : config.values()) {
        bool wanted = key == "seed";
        for (const char* prefix : {"model.", "optim.", "ema.", "teacher."})
            wanted = wanted || key.rfind(prefix, 0) == 0;
        if (wanted) std::visit([&](const auto& item) { keys[key] = item; }, value);
    }
    return keys;
}

namespace {

// RecordFunction takes plain function pointers, so the counter's state is per thread.
struct CounterState {
    double flops = 0;
    int depth = 0;   // counted ops open on this thread
};
thread_local CounterState counter_state;

struct CountedOp : public at::ObserverContext {
    bool outermost = false;
    double flops = 0;               // known from the inputs
    double flops_per_output = 0;    // convolutions: times the output's element count
};

bool is_matrix_product(const char* name) {
    for (const char* counted : {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::addbmm"})
        if (std::strcmp(name, counted) == 0) return true;
    return false;
}

// 2 M K N (times the batch) for A [.., M, K] x B [.., K, N]: the last two tensor inputs.
double product_flops(const at::RecordFunction& fn) {
    std::vector<at::Tensor> tensors;
    for (const auto& input : fn.inputs())
        if (input.isTensor()) tensors.push_back(input.toTensor());
    if (tensors.size() < 2) return 0;
    const at::Tensor& a = tensors[tensors.size() - 2];
    const at::Tensor& b = tensors[tensors.size() - 1];
    if (a.dim() < 2 || b.dim() < 2) return 0;
    return 2.0 * static_cast<double>(a.numel()) * static_cast<double>(b.size(-1));
}

std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction& fn) {
    const char* name = fn.name();
    bool convolution = std::strcmp(name, "aten::convolution") == 0;
    if (!convolution && !is_matrix_product(name)) return nullptr;
    auto op = std::make_unique<CountedOp>();
    op->outermost = counter_state.depth++ == 0;
    if (op->outermost) {
        if (convolution) {
            // weight [C_out, C_in / groups, k...]: each output element costs C_in / groups x prod(k) MACs.
            const at::Tensor weight = fn.inputs()[1].toTensor();
            op->flops_per_output = 2.0 * static_cast<double>(weight.numel() / weight.size(0));
        } else {
            op->flops = product_flops(fn);
        }
    }
    return op;
}

void on_op_end(const at::RecordFunction& fn, at::ObserverContext* context) {
    auto* op = static_cast<CountedOp*>(context);
    if (op == nullptr) return;
    --counter_state.depth;
    if (!op->outermost) return;
    double flops = op->flops;
    if (op->flops_per_output > 0 && !fn.outputs().empty() && fn.outputs()[0].isTensor())
        flops += op->flops_per_output * static_cast<double>(fn.outputs()[0].toTensor().numel());
    counter_state.flops += flops;
}

}  // namespace

GemmFlopCounter::GemmFlopCounter() {
    counter_state = CounterState{};
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(on_op_start, on_op_end).needsInputs(true).needsOutputs(true));
}

GemmFlopCounter::~GemmFlopCounter() { at::removeCallback(handle_); }

double GemmFlopCounter::flops() const { return counter_state.flops; }

double forward_flops_per_image(VelocityNet& net, const NetworkShape& shape, int64_t batch) {
    torch::NoGradGuard no_grad;
    std::vector<int64_t> sizes{batch};
    sizes.insert(sizes.end(), shape.sample_shape.begin(), shape.sample_shape.end());
    at::Tensor x = torch::randn(sizes);
    at::Tensor t = torch::rand({batch});
    at::Tensor labels = torch::randint(0, std::max<int64_t>(1, shape.num_classes), {batch}, torch::kLong);
    GemmFlopCounter counter;
    net.forward(x, t, labels);
    return counter.flops() / static_cast<double>(batch);
}

void synchronize(const c10::Device& device) {
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

GemmPeak measure_gemm_peak(int64_t size, int64_t iterations, const c10::Device& device) {
    torch::NoGradGuard no_grad;
    auto options = torch::TensorOptions().device(device);
    at::Tensor a = torch::randn({size, size}, options);
    at::Tensor b = torch::randn({size, size}, options);
    at::Tensor c = torch::empty({size, size}, options);
    for (int i = 0; i < 2; ++i) torch::mm_out(c, a, b);
    synchronize(device);
    std::vector<double> gflops;
    double flops = 2.0 * static_cast<double>(size) * static_cast<double>(size) * static_cast<double>(size);
    for (int64_t i = 0; i < iterations; ++i) {
        auto start = std::chrono::steady_clock::now();
        torch::mm_out(c, a, b);
        synchronize(device);
        gflops.push_back(flops / seconds_since(start) / 1e9);
    }
    GemmPeak peak;
    peak.size = size;
    peak.iterations = iterations;
    peak.best_gflops = *std::max_element(gflops.begin(), gflops.end());
    peak.median_gflops = median(gflops);
    return peak;
}

double median(std::vector<double> values) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    size_t middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

double seconds_since(const std::chrono::steady_clock::time_point& start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace onestep::bench
