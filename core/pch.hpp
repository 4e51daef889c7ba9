// Precompiled header: the heavy third-party headers every translation unit pulls in.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>
#include <map>
#include <string>
#include <vector>
