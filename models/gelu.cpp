// Fused GELUs as autograd functions: the forward saves only x; the backward recomputes the
// nonlinearity in the same pass that forms grad * GELU'(x). Under create_graph the backward is
// libtorch's differentiable one; CPUs without AVX2/FMA and other dtypes or devices use at::gelu.
#include "models/gelu.hpp"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>

#include "models/gelu_kernels.hpp"

namespace onestep {
namespace {

// Elements per parallel task.
constexpr int64_t kGrain = 32768;

std::atomic<bool> fused_enabled{true};

bool fast_path(const at::Tensor& x) {
    static const bool supported = gelu_kernels::supported();
    return supported && fused_enabled.load(std::memory_order_relaxed) && x.device().is_cpu() &&
           x.scalar_type() == at::kFloat && x.layout() == at::kStrided;
}

template <class Kernel>
void in_parallel(int64_t n, Kernel kernel) {
    at::parallel_for(0, n, kGrain, [&](int64_t begin, int64_t end) { kernel(begin, end - begin); });
}

// One GELU variant: libtorch's name for it and the two loops.
struct TanhGelu {
    static constexpr const char* kApproximate = "tanh";
    static void forward(const float* x, float* y, int64_t n) { gelu_kernels::forward_tanh(x, y, n); }
    static void backward(const float* g, const float* x, float* out, int64_t n) { gelu_kernels::backward_tanh(g, x, out, n); }
};
struct ErfGelu {
    static constexpr const char* kApproximate = "none";
    static void forward(const float* x, float* y, int64_t n) { gelu_kernels::forward_erf(x, y, n); }
    static void backward(const float* g, const float* x, float* out, int64_t n) { gelu_kernels::backward_erf(g, x, out, n); }
};

// GELU of a contiguous float32 tensor.
template <class Variant>
at::Tensor fused_forward(const at::Tensor& input) {
    at::Tensor output = at::empty_like(input);
    const float* in = input.data_ptr<float>();
    float* out = output.data_ptr<float>();
    in_parallel(input.numel(), [&](int64_t begin, int64_t n) { Variant::forward(in + begin, out + begin, n); });
    return output;
}

template <class Variant>
class FusedGelu : public torch::autograd::Function<FusedGelu<Variant>> {
  public:
    static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& x) {
        context->save_for_backward({x});   // x itself, so a create_graph backward reaches it
        return fused_forward<Variant>(x.contiguous());
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                   torch::autograd::variable_list grads) {
        at::Tensor input = context->get_saved_variables()[0];
        if (torch::GradMode::is_enabled())   // create_graph
            return {at::gelu_backward(grads[0], input, Variant::kApproximate)};
        input = input.contiguous();
        at::Tensor grad = grads[0].contiguous();
        at::Tensor result = at::empty_like(input);
        const float* g = grad.data_ptr<float>();
        const float* in = input.data_ptr<float>();
        float* out = result.data_ptr<float>();
        in_parallel(input.numel(),
                    [&](int64_t begin, int64_t n) { Variant::backward(g + begin, in + begin, out + begin, n); });
        return {result};
    }
};

template <class Variant>
at::Tensor gelu(const at::Tensor& x) {
    if (!fast_path(x)) return at::gelu(x, Variant::kApproximate);
    if (!x.requires_grad() || !torch::GradMode::is_enabled()) return fused_forward<Variant>(x.contiguous());
    return FusedGelu<Variant>::apply(x);
}

}  // namespace

void set_fused_gelu_enabled(bool enabled) { fused_enabled = enabled; }

at::Tensor gelu_tanh(const at::Tensor& x) { return gelu<TanhGelu>(x); }

at::Tensor gelu_erf(const at::Tensor& x) { return gelu<ErfGelu>(x); }

}  // namespace onestep
