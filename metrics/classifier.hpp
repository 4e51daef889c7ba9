// The suite's own image classifier (image-metrics spec §9): the "classifier" method trains a
// small CNN on a labelled image dataset; its penultimate 128-d features are the feature
// extractor of fd_classifier, kid_classifier, pr_classifier, is_classifier and acc_cond.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include "metrics/features.hpp"

namespace onestep {

void register_classifier_method();

// Loads a classifier checkpoint (or run directory) as a feature extractor; UserError when the
// checkpoint is missing or belongs to another method.
std::unique_ptr<FeatureExtractor> make_classifier_extractor(const std::string& checkpoint, const c10::Device& device);

// A trained classifier as a frozen function whose logits carry gradients back to the images
// (float [N, C, H, W] in [-1, 1], not quantised; a 28x28 classifier sees the centre of a padded
// 32x32 image): the reward model of consistency distillation.
class FrozenClassifier {
  public:
    virtual ~FrozenClassifier() = default;
    virtual at::Tensor logits(const at::Tensor& images) = 0;
    virtual int64_t num_classes() const = 0;
    virtual std::vector<int64_t> input_shape() const = 0;   // {C, side, side}
    virtual std::string id() const = 0;
};

// UserError as for make_classifier_extractor.
std::unique_ptr<FrozenClassifier> load_frozen_classifier(const std::string& checkpoint, const c10::Device& device);

}  // namespace onestep
