/* CONCATENATION for any element size: inputs share the output's quantization, so this is a
 * copy. Arguments after p: the p->num_inputs input pointers, then the output pointer. */
#include <stdarg.h>
#include <string.h>

#include "eq_kernels_elementwise.h"

#define EQ_CONCAT_MAX_INPUTS 16

eq_status eq_concat_x(const eq_concat_params *p, ...)
{
    const uint8_t *inputs[EQ_CONCAT_MAX_INPUTS];
    uint8_t *out;
    int32_t i;
    int32_t r;
    va_list args;
    if (p == 0 || p->num_inputs <= 0 || p->num_inputs > EQ_CONCAT_MAX_INPUTS ||
        p->elem_bytes <= 0) {
        return EQ_ERR_ARG;
    }
    va_start(args, p);
    for (i = 0; i < p->num_inputs; ++i) {
        inputs[i] = (const uint8_t *)va_arg(args, const void *);
    }
    out = (uint8_t *)va_arg(args, void *);
    va_end(args);
    if (out == 0) {
        return EQ_ERR_ARG;
    }
    for (i = 0; i < p->num_inputs; ++i) {
        if (inputs[i] == 0) {
            return EQ_ERR_ARG;
        }
    }
    for (r = 0; r < p->outer; ++r) {
        for (i = 0; i < p->num_inputs; ++i) {
            const size_t n = (size_t)p->copy_elems[i] * (size_t)p->elem_bytes;
            memcpy(out, inputs[i] + (size_t)r * n, n);
            out += n;
        }
    }
    return EQ_OK;
}
