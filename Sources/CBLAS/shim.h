// The CBLAS interface of whichever libblas.so.3 Debian's alternatives select
// (OpenBLAS once libopenblas-dev is installed, else the reference BLAS).
#include <cblas.h>
