// A TFLite Micro firmware for measuring one inference under the QEMU plugin (bare metal, MPS2).
//
// edgeq.toolchain.tflm_firmware generates tflm_bench_data.h (the model, one input, the ops to
// register, the arena size) and links this file with a cached libtensorflow-microlite.a.
// The timed window is the call of eqb_window_start() up to eqb_window_stop(): exactly the
// Invoke(). Results go out over Arm semihosting (QEMU -semihosting-config enable=on):
// "EQB status=<s> arena=<bytes> out=<hex bytes>", then the emulator exits.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <new>

#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tflm_bench_data.h"

extern "C" {
extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__;
extern uint32_t __stack_top__;
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);
void eqb_reset(void);
void eqb_fault(void);
__attribute__((noinline)) void eqb_window_start(void);
__attribute__((noinline)) void eqb_window_stop(void);
}

int main(void);

__attribute__((section(".isr_vector"), used)) static void (*const eqb_vectors[16])(void) = {
    reinterpret_cast<void (*)(void)>(&__stack_top__), eqb_reset, eqb_fault, eqb_fault,
    eqb_fault, eqb_fault, eqb_fault, nullptr, nullptr, nullptr, nullptr, eqb_fault, eqb_fault,
    nullptr, eqb_fault, eqb_fault};

namespace {

constexpr uint32_t kSysWrite0 = 0x04u;
constexpr uint32_t kSysExit = 0x18u;
constexpr uint32_t kAppExit = 0x20026u;

uint32_t semihost(uint32_t op, const void *arg) {
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

[[noreturn]] void finish(void) {
    for (;;) {
        semihost(kSysExit, reinterpret_cast<const void *>(kAppExit));
    }
}

char g_line[160];
size_t g_len;

void flush(void) {
    g_line[g_len] = '\0';
    semihost(kSysWrite0, g_line);
    g_len = 0;
}

void put(const char *s) {
    for (; *s != '\0'; ++s) {
        if (g_len + 1 >= sizeof g_line) {
            flush();
        }
        g_line[g_len++] = *s;
    }
}

void put_uint(uint32_t v) {
    char buf[12];
    int i = 11;
    buf[i] = '\0';
    do {
        buf[--i] = static_cast<char>('0' + v % 10u);
        v /= 10u;
    } while (v != 0u && i > 0);
    put(&buf[i]);
}

void put_hex(const uint8_t *p, size_t n) {
    static const char kDigits[] = "0123456789abcdef";
    char two[3] = {0, 0, 0};
    for (size_t i = 0; i < n; ++i) {
        two[0] = kDigits[p[i] >> 4];
        two[1] = kDigits[p[i] & 0xFu];
        put(two);
    }
}

alignas(16) uint8_t g_arena[EQB_ARENA_BYTES];

// Constructed in place and never destroyed: no atexit registration (no __dso_handle needed).
using Resolver = tflite::MicroMutableOpResolver<EQB_NUM_OPS>;
alignas(Resolver) uint8_t g_resolver_storage[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];

}  // namespace

extern "C" void eqb_window_start(void) { __asm__ volatile("" ::: "memory"); }
extern "C" void eqb_window_stop(void) { __asm__ volatile("" ::: "memory"); }

extern "C" void eqb_fault(void) {
    put("EQB fault\n");
    flush();
    finish();
}

extern "C" void eqb_reset(void) {
    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0u;
    }
#if defined(__ARM_FP)
    *reinterpret_cast<volatile uint32_t *>(0xE000ED88u) |= 0xFu << 20;  // CPACR: CP10/CP11
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) {
        (*f)();
    }
    (void)main();
    finish();
}

extern "C" void eqb_log(const char *s) {
    put("EQB log: ");
    put(s);
    flush();
}

int main(void) {
    RegisterDebugLogCallback(eqb_log);
    Resolver &resolver = *new (g_resolver_storage) Resolver();
#define EQB_REGISTER(method) resolver.method();
    EQB_OPS(EQB_REGISTER)
#undef EQB_REGISTER
    const tflite::Model *model = tflite::GetModel(eqb_model);
    tflite::MicroInterpreter &interpreter = *new (g_interpreter_storage)
        tflite::MicroInterpreter(model, resolver, g_arena, sizeof g_arena);
    uint32_t status = 0;
    if (interpreter.AllocateTensors() != kTfLiteOk) {
        status = 1;
    } else {
        TfLiteTensor *in = interpreter.input(0);
        if (in == nullptr || in->bytes != sizeof eqb_input) {
            status = 2;
        } else {
            memcpy(in->data.raw, eqb_input, sizeof eqb_input);
            eqb_window_start();
            status = interpreter.Invoke() == kTfLiteOk ? 0u : 3u;
            eqb_window_stop();
        }
    }
    put("EQB status=");
    put_uint(status);
    put(" arena=");
    put_uint(static_cast<uint32_t>(interpreter.arena_used_bytes()));
    put(" out=");
    if (status == 0u) {
        TfLiteTensor *out = interpreter.output(0);
        put_hex(reinterpret_cast<const uint8_t *>(out->data.raw), out->bytes);
    }
    put("\n");
    flush();
    return 0;
}
