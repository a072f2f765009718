/* edgeq-rt: the ahead-of-time int8 runtime. Public types shared by kernels and generated models.
 *
 * The generated model.h checks EQ_RT_ABI_VERSION and refuses to compile against another
 * runtime: regenerate the model when the runtime changes. */
#ifndef EDGEQ_RT_H
#define EDGEQ_RT_H

#include <stddef.h>
#include <stdint.h>

#define EQ_RT_ABI_VERSION 1

typedef enum { EQ_OK = 0, EQ_ERR_ARG = 1, EQ_ERR_UNSUPPORTED = 2 } eq_status;

typedef enum { EQ_INT8 = 0, EQ_INT16 = 1, EQ_FLOAT32 = 2, EQ_INT32 = 3, EQ_UINT8 = 4 } eq_dtype;

/* Shape and quantization of a model input or output, for applications and the host protocol. */
typedef struct {
    eq_dtype dtype;
    int32_t rank;
    int32_t dims[6];
    int32_t bytes;
    float scale;
    int32_t zero_point;
} eq_io_info;

#if defined(__GNUC__)
#define EQ_ALIGN16 __attribute__((aligned(16)))
#else
#define EQ_ALIGN16
#endif

#endif /* EDGEQ_RT_H */
