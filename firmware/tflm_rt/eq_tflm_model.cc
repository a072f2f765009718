// The edgeq model API (model.h: edgeq_model_input/output/invoke and the I/O tables) over a
// TFLite Micro MicroInterpreter, so the protocol application (firmware/app) and the host's
// validation and benchmarks run a TFLM firmware exactly as they run an edgeq-rt one.
//
// edgeq.codegen.tflm_model generates model.h and eq_tflm_data.h (the flatbuffer, the ops to
// register, the arena size, the I/O tables); this file is the same for every model. The
// interpreter is set up on first use of an input or output pointer, which the application
// makes before any timed invoke, so AllocateTensors() is never inside a timed window.
// Objects are built in static storage with placement new and never destroyed: no C++ static
// constructors, no heap, no atexit.
#include <stddef.h>
#include <stdint.h>

#include <new>

#include "eq_tflm_data.h"
#include "model.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_resource_variable.h"

#if !defined(EQ_TFLM_NUM_OPS) || !defined(EQ_TFLM_STATEFUL) || \
    !defined(EQ_TFLM_NUM_RESOURCE_VARIABLES)
#error "eq_tflm_data.h is incomplete: regenerate it (edgeq build --runtime tflm)"
#endif
#ifndef TF_LITE_STATIC_MEMORY
#error "compile with -DTF_LITE_STATIC_MEMORY, as the TFLite Micro library was"
#endif

// eq_status values beyond edgeq-rt's (edgeq.toolchain.tflm_library.TFLM_STATUS names them).
#define EQ_TFLM_E_REGISTER 4 /* an op registration failed */
#define EQ_TFLM_E_SCHEMA 5   /* the flatbuffer's schema version is not TFLM's */
#define EQ_TFLM_E_ALLOCATE 6 /* AllocateTensors() failed: the arena is too small */
#define EQ_TFLM_E_IO 7       /* an input/output tensor differs from the I/O table */
#define EQ_TFLM_E_INVOKE 8   /* Invoke() (or Reset()) failed */

namespace {

using Resolver = tflite::MicroMutableOpResolver<EQ_TFLM_NUM_OPS>;

alignas(16) uint8_t g_arena[EDGEQ_MODEL_ARENA_BYTES];
alignas(Resolver) uint8_t g_resolver_storage[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *g_interpreter = nullptr;
int g_setup = 0; // 0: not yet, 1: ready, <0: failed (an EQ_TFLM_E_* code, negated)

int io_matches(const TfLiteTensor *t, const eq_io_info &info)
{
    return t != nullptr && t->data.raw != nullptr && t->bytes == static_cast<size_t>(info.bytes);
}

int setup(void)
{
    if (g_setup != 0) {
        return g_setup;
    }
    Resolver *resolver = new (g_resolver_storage) Resolver();
#define EQ_TFLM_REGISTER(method)           \
    if (resolver->method() != kTfLiteOk) { \
        g_setup = -EQ_TFLM_E_REGISTER;     \
        return g_setup;                    \
    }
    EQ_TFLM_OPS(EQ_TFLM_REGISTER)
#undef EQ_TFLM_REGISTER
    const tflite::Model *model = tflite::GetModel(eq_tflm_model_data);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        g_setup = -EQ_TFLM_E_SCHEMA;
        return g_setup;
    }
    // The allocator and the resource variables (VAR_HANDLE) live in the arena.
    tflite::MicroAllocator *allocator = tflite::MicroAllocator::Create(g_arena, sizeof g_arena);
    if (allocator == nullptr) {
        g_setup = -EQ_TFLM_E_ALLOCATE;
        return g_setup;
    }
    tflite::MicroResourceVariables *variables = nullptr;
#if EQ_TFLM_NUM_RESOURCE_VARIABLES > 0
    variables = tflite::MicroResourceVariables::Create(allocator, EQ_TFLM_NUM_RESOURCE_VARIABLES);
    if (variables == nullptr) {
        g_setup = -EQ_TFLM_E_ALLOCATE;
        return g_setup;
    }
#endif
    g_interpreter = new (g_interpreter_storage)
        tflite::MicroInterpreter(model, *resolver, allocator, variables);
    if (g_interpreter->AllocateTensors() != kTfLiteOk) {
        g_setup = -EQ_TFLM_E_ALLOCATE;
        return g_setup;
    }
    for (int32_t i = 0; i < EDGEQ_MODEL_NUM_INPUTS; ++i) {
        if (!io_matches(g_interpreter->input(static_cast<size_t>(i)), edgeq_model_input_info[i])) {
            g_setup = -EQ_TFLM_E_IO;
            return g_setup;
        }
    }
    for (int32_t i = 0; i < EDGEQ_MODEL_NUM_OUTPUTS; ++i) {
        if (!io_matches(g_interpreter->output(static_cast<size_t>(i)),
                        edgeq_model_output_info[i])) {
            g_setup = -EQ_TFLM_E_IO;
            return g_setup;
        }
    }
    g_setup = 1;
    return g_setup;
}

} // namespace

extern "C" void *edgeq_model_input(int32_t i)
{
    if (i < 0 || i >= EDGEQ_MODEL_NUM_INPUTS || setup() != 1) {
        return nullptr;
    }
    return g_interpreter->input(static_cast<size_t>(i))->data.raw;
}

extern "C" void *edgeq_model_output(int32_t i)
{
    if (i < 0 || i >= EDGEQ_MODEL_NUM_OUTPUTS || setup() != 1) {
        return nullptr;
    }
    return g_interpreter->output(static_cast<size_t>(i))->data.raw;
}

extern "C" eq_status edgeq_model_invoke(void)
{
    int state = setup();
    if (state != 1) {
        return static_cast<eq_status>(-state);
    }
#if EQ_TFLM_STATEFUL
    // Variable tensors (LSTM state) start from zero for every inference, as on the host.
    if (g_interpreter->Reset() != kTfLiteOk) {
        return static_cast<eq_status>(EQ_TFLM_E_INVOKE);
    }
#endif
    return g_interpreter->Invoke() == kTfLiteOk ? EQ_OK : static_cast<eq_status>(EQ_TFLM_E_INVOKE);
}

extern "C" uint32_t edgeq_model_arena_used(void)
{
    return setup() == 1 ? static_cast<uint32_t>(g_interpreter->arena_used_bytes()) : 0u;
}
