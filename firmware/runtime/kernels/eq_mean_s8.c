/* MEAN, int8 and int16: TFLM's integer reference (QuantizedMeanOrSum, 1/count folded into the
 * output multiplier). */
#include "eq_mean_impl.h"

EQ_MEAN_SUM(int8_t)
EQ_MEAN_KERNEL(int8_t, eq_mean_s8, -128, 127)
