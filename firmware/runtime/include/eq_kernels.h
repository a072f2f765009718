/* edgeq-rt: every kernel the generated model.c may call (both kernel families). */
#ifndef EQ_KERNELS_H
#define EQ_KERNELS_H

#include "eq_kernels_conv.h"
#include "eq_kernels_elementwise.h"
#include "eq_kernels_lut.h"
#include "eq_kernels_math.h"
#include "eq_kernels_movement.h"
#include "eq_kernels_recurrent.h"

#endif /* EQ_KERNELS_H */
