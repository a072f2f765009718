/* SPLIT / SPLIT_V / UNPACK for any element size: every input row of sum(copy_elems) elements is
 * dealt out to the outputs in order. Arguments after p: the input pointer, then the
 * p->num_outputs output pointers. */
#include <stdarg.h>
#include <string.h>

#include "eq_kernels_movement.h"

#define EQ_SPLIT_MAX_OUTPUTS 64

eq_status eq_split_x(const eq_split_params *p, const void *input, ...)
{
    uint8_t *outputs[EQ_SPLIT_MAX_OUTPUTS];
    const uint8_t *in = (const uint8_t *)input;
    int32_t i;
    int32_t r;
    va_list args;
    if (p == 0 || in == 0 || p->num_outputs <= 0 || p->num_outputs > EQ_SPLIT_MAX_OUTPUTS ||
        p->elem_bytes <= 0) {
        return EQ_ERR_ARG;
    }
    va_start(args, input);
    for (i = 0; i < p->num_outputs; ++i) {
        outputs[i] = (uint8_t *)va_arg(args, void *);
    }
    va_end(args);
    for (i = 0; i < p->num_outputs; ++i) {
        if (outputs[i] == 0) {
            return EQ_ERR_ARG;
        }
    }
    for (r = 0; r < p->outer; ++r) {
        for (i = 0; i < p->num_outputs; ++i) {
            const size_t n = (size_t)p->copy_elems[i] * (size_t)p->elem_bytes;
            memcpy(outputs[i] + (size_t)r * n, in, n);
            in += n;
        }
    }
    return EQ_OK;
}
