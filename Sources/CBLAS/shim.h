// The CBLAS interface of whichever libblas.so.3 Debian's alternatives select
// (OpenBLAS once libopenblas-dev is installed, else the reference BLAS).
#include <cblas.h>

// CPU features that decide which OpenBLAS kernels this CPU can run (see BLAS.swift).
static inline int mnemo_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static inline int mnemo_cpu_has_avx512_skylakex(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl");
}
