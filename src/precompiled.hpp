// Precompiled header: the heavy third-party includes shared by most translation units.
#pragma once
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>
