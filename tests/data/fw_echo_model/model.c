/* Echo test fixture: y[j] = clamp((sum_i x[i] * ((i % 7) - 3 + j)) >> 4, -128, 127).
 * The arena reuses the input bytes for the accumulators (like a real planner would), so the
 * firmware must restore the input before every invoke. */
#include "model.h"

#include <string.h>

static int32_t g_arena[EDGEQ_MODEL_ARENA_BYTES / 4] __attribute__((aligned(16)));

const eq_io_info edgeq_model_input_info[1] = {
    {EQ_INT8, 4, {1, 8, 8, 1, 0, 0}, 64, 0.0625f, -128}};
const eq_io_info edgeq_model_output_info[1] = {{EQ_INT8, 2, {1, 10, 0, 0, 0, 0}, 10, 0.00390625f, -128}};
const char *const edgeq_model_layer_names[2] = {"FULLY_CONNECTED", "RELU"};
const uint32_t edgeq_model_layer_macs[2] = {640u, 0u};

void *edgeq_model_input(int32_t i) { return i == 0 ? (void *)g_arena : (void *)0; }
void *edgeq_model_output(int32_t i) { return i == 0 ? (void *)((int8_t *)g_arena + 112) : (void *)0; }

eq_status edgeq_model_invoke(void) {
    const int8_t *x = (const int8_t *)g_arena;
    int32_t acc[10];
#ifdef EDGEQ_PROFILE_LAYERS
    edgeq_layer_hook(0, 0);
#endif
    for (int32_t j = 0; j < 10; ++j) {
        int32_t s = 0;
        for (int32_t i = 0; i < 64; ++i) {
            s += (int32_t)x[i] * ((i % 7) - 3 + j);
        }
        acc[j] = s;
    }
    memcpy(g_arena, acc, sizeof acc); /* clobbers the input, as a real planner may */
#ifdef EDGEQ_PROFILE_LAYERS
    edgeq_layer_hook(0, 1);
    edgeq_layer_hook(1, 0);
#endif
    int8_t *y = (int8_t *)g_arena + 112;
    for (int32_t j = 0; j < 10; ++j) {
        int32_t v = g_arena[j] >> 4;
        y[j] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
#ifdef EDGEQ_PROFILE_LAYERS
    edgeq_layer_hook(1, 1);
#endif
    return EQ_OK;
}
