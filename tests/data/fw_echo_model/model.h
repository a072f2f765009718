/* Echo test fixture implementing the generated-model API (not generated). */
#ifndef EDGEQ_MODEL_H
#define EDGEQ_MODEL_H
#include "edgeq_rt.h"
#if EQ_RT_ABI_VERSION != 1
#error "Regenerate: model built for edgeq-rt ABI 1"
#endif
#define EDGEQ_MODEL_NAME "fw_echo"
#define EDGEQ_MODEL_HASH "0123456789abcdef"
#define EDGEQ_MODEL_ARENA_BYTES 128
#define EDGEQ_MODEL_NUM_INPUTS 1
#define EDGEQ_MODEL_NUM_OUTPUTS 1
#define EDGEQ_MODEL_NUM_LAYERS 2
extern const eq_io_info edgeq_model_input_info[EDGEQ_MODEL_NUM_INPUTS];
extern const eq_io_info edgeq_model_output_info[EDGEQ_MODEL_NUM_OUTPUTS];
extern const char *const edgeq_model_layer_names[EDGEQ_MODEL_NUM_LAYERS];
extern const uint32_t edgeq_model_layer_macs[EDGEQ_MODEL_NUM_LAYERS];
void *edgeq_model_input(int32_t i);
void *edgeq_model_output(int32_t i);
eq_status edgeq_model_invoke(void);
void edgeq_layer_hook(int32_t layer, int32_t end);
#endif
