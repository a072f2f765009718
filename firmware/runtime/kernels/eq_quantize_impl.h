/* Shared by eq_quantize_f32.c and eq_requantize_x.c: dtype ranges and stores. */
#ifndef EQ_QUANTIZE_IMPL_H
#define EQ_QUANTIZE_IMPL_H

#include "eq_kernels_conv.h"
#include "eq_math.h"

static inline int32_t eq_dtype_min(eq_dtype t)
{
    return t == EQ_INT8 ? -128 : (t == EQ_INT16 ? -32768 : (t == EQ_UINT8 ? 0 : INT32_MIN));
}

static inline int32_t eq_dtype_max(eq_dtype t)
{
    return t == EQ_INT8 ? 127 : (t == EQ_INT16 ? 32767 : (t == EQ_UINT8 ? 255 : INT32_MAX));
}

static inline int eq_is_int_type(eq_dtype t)
{
    return t == EQ_INT8 || t == EQ_INT16 || t == EQ_INT32 || t == EQ_UINT8;
}

static inline void eq_store_int(void *out, eq_dtype t, int32_t i, int32_t v)
{
    if (t == EQ_INT8) {
        ((int8_t *)out)[i] = (int8_t)v;
    } else if (t == EQ_UINT8) {
        ((uint8_t *)out)[i] = (uint8_t)v;
    } else if (t == EQ_INT16) {
        ((int16_t *)out)[i] = (int16_t)v;
    } else {
        ((int32_t *)out)[i] = v;
    }
}

#endif /* EQ_QUANTIZE_IMPL_H */
