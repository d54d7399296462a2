// cblas.h from Debian's libblas-dev; libopenblas-dev makes OpenBLAS the libblas.so.3 that loads
// (the same library mnemod links), for the in-process brute-force peer of the agent step.
#include <cblas.h>
