/* MEAN, int8 and int16: TFLM's integer reference (QuantizedMeanOrSum, 1/count folded into the
 * output multiplier). */
#include "eq_mean_impl.h"

EQ_MEAN_SUM(int16_t)
EQ_MEAN_KERNEL(int16_t, eq_mean_s16, -32768, 32767)
