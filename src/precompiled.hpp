// Precompiled header: the heavy third-party includes shared by most translation units.
#pragma once
#include <torch/torch.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>
#include <fmt/format.h>
