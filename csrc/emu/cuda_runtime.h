// Stands in for CUDA's cuda_runtime.h in the emulation build (found first on the include path).
#pragma once
#include "cuda_emu.h"
