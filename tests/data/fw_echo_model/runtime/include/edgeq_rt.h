/* Pinned edgeq-rt runtime declarations (docs/interfaces.md), for the echo test fixture only. */
#ifndef EDGEQ_RT_H
#define EDGEQ_RT_H
#include <stdint.h>
#define EQ_RT_ABI_VERSION 1
typedef enum { EQ_OK = 0, EQ_ERR_ARG = 1, EQ_ERR_UNSUPPORTED = 2 } eq_status;
typedef enum { EQ_INT8 = 0, EQ_INT16 = 1, EQ_FLOAT32 = 2, EQ_INT32 = 3, EQ_UINT8 = 4 } eq_dtype;
typedef struct {
    eq_dtype dtype;
    int32_t rank;
    int32_t dims[6];
    int32_t bytes;
    float scale;
    int32_t zero_point;
} eq_io_info;
#endif
