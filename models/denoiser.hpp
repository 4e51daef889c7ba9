// The Denoiser interface: anything that gives a velocity v(x_t, t, y) in the project
// convention — a velocity network, a VP noise-prediction network seen through its adapter,
// the analytic mixture — with its valid time range. Samplers talk only to this.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

#include "models/network.hpp"

namespace onestep {

class Denoiser {
  public:
    virtual ~Denoiser() = default;
    // x_t: [N, ...]; t: float [N]; labels: int64 [N] in 0..C (C = null label).
    virtual at::Tensor velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) = 0;
    virtual int64_t num_classes() const = 0;      // C (0: unconditional)
    virtual bool has_null_label() const = 0;      // trained with label dropout: guidance allowed
    virtual double t_min() const { return 0.0; }  // t is clamped into [t_min, t_max] before evaluation
    virtual double t_max() const { return 1.0; }
    virtual bool singular_at_one() const { return false; }

    at::Tensor x0(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels);
    at::Tensor noise(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels);
};

// v_w = v(x, t, null) + w (v(x, t, y) - v(x, t, null)), one batched forward; w = 1 is a single
// conditional forward. Guidance on a model without a null label is a UserError.
at::Tensor guided_velocity(Denoiser& denoiser, const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels,
                           double guidance);

// The output convention of a network.
enum class Parameterisation { Velocity, VpEpsilon };

// A network seen as a Denoiser. Velocity nets are used as they are; VP epsilon nets receive
// x_vp = x_t / r_t and the project t (one embedder for all in-suite nets) and are converted
// with v = (x_t - eps)/t, valid for t >= t(tau = 999).
class NetworkDenoiser : public Denoiser {
  public:
    NetworkDenoiser(std::shared_ptr<VelocityNet> net, Parameterisation parameterisation, int64_t num_classes,
                    bool has_null_label);
    at::Tensor velocity(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& labels) override;
    int64_t num_classes() const override { return num_classes_; }
    bool has_null_label() const override { return has_null_label_; }
    double t_min() const override;
    const std::shared_ptr<VelocityNet>& net() const { return net_; }
    Parameterisation parameterisation() const { return parameterisation_; }

  private:
    std::shared_ptr<VelocityNet> net_;
    Parameterisation parameterisation_;
    int64_t num_classes_;
    bool has_null_label_;
};

}  // namespace onestep
