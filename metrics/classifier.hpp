// The suite's own image classifier (image-metrics spec §9): the "classifier" method trains a
// small CNN on a labelled image dataset; its penultimate 128-d features are the feature
// extractor of fd_classifier, kid_classifier, pr_classifier, is_classifier and acc_cond.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "metrics/features.hpp"

namespace onestep {

void register_classifier_method();

// Loads a classifier checkpoint (or run directory) as a feature extractor; UserError when the
// checkpoint is missing or belongs to another method.
std::unique_ptr<FeatureExtractor> make_classifier_extractor(const std::string& checkpoint, const c10::Device& device);

}  // namespace onestep
