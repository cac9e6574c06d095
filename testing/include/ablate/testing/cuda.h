// For tests of CUDA code: skip, saying why, where there is no GPU. Such tests still compile in
// every CUDA build (CI's PyPI LibTorch build) and run where a GPU is present (scripts/gpu-check).
#pragma once

#include <gtest/gtest.h>
#include <torch/cuda.h>

#define ABLATE_SKIP_WITHOUT_CUDA()                                                             \
  if (!torch::cuda::is_available())                                                            \
  GTEST_SKIP() << "needs a CUDA GPU (none here); runs in scripts/gpu-check on a GPU machine, " \
                  "and its CUDA code is compiled by the PyPI LibTorch build"
