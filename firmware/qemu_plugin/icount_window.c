/* QEMU TCG plugin (API version 1, QEMU 7.2): exact instruction counts and Cortex-M timing
 * events between two addresses.
 *
 * Debian ships no qemu-plugin.h, so the few declarations used are written out below from the
 * documented plugin API. At translation time every Thumb/Thumb-2 instruction is decoded from its
 * bytes into a timing class (ARMv7-M encodings, Cortex-M4 TRM instruction timing classes); an
 * inline counter per class is bumped each time it executes. Events the encoding cannot tell are
 * counted at run time: non-sequential control flow (a translation block entered from anywhere but
 * the end of the block executed before it = a taken branch), data reads whose address lies in
 * the flash range and how many of them miss a small ART-like line cache, and registers moved by
 * LDM/STM/PUSH/POP/VLDM/VSTM. edgeq.device.timing turns
 * the counts into cycles with a per-core cost table and per-board memory costs.
 *
 * When the instruction at `start` executes, all counters are latched; when the one at `stop`
 * executes, one line "insns=N taken=N ... c<k>=N" with the differences is appended to `out`.
 * Each execution of `mark` inside a window appends "mark insns=N ..." (cumulative since start),
 * which attributes counts to layers through the generated per-layer hook; the one execution of
 * `stop` inside each hook call (the hook reads the counter) does not end the window. Every start
 * writes a "start" line, so the marks of an untimed warm-up run are dropped by the reader.
 *
 *   -plugin ./icount_window.so,start=0x1234,stop=0x5678,out=/tmp/counts.txt
 *           [,mark=0x9abc][,flash=0x08000000:0x08200000][,classes=/tmp/classes.txt]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
typedef uint32_t qemu_plugin_meminfo_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info,
                                          uint64_t vaddr, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* Timing classes; the names (printed as c<k>) are mirrored by edgeq.device.timing.CLASSES. */
enum {
    C_ALU,            /* data processing, moves, shifts, extends, saturate, SIMD add/sub, IT */
    C_MUL,            /* MUL/MLA/MLS, SMLAxy, SMLAD, SMUAD, SMULL/SMLAL, ... */
    C_DIV,            /* SDIV/UDIV (2-12 cycles, operand dependent) */
    C_LOAD,           /* LDR/LDRB/LDRH/LDRSB/LDRSH, single */
    C_LOAD_PIPE,      /* a single load right after another single load */
    C_STORE,          /* STR* with immediate offset */
    C_STORE_REG,      /* STR* with register offset */
    C_STORE_REG_PIPE, /* STR* with register offset right after a single load */
    C_LDRD,           /* LDRD/STRD */
    C_LDM,            /* LDM/STM/PUSH/POP: + one per register (counted in `regs`) */
    C_BRANCH,         /* B, BL, BX, BLX, CBZ/CBNZ, MOV/ADD to PC: + refill when taken */
    C_TABLE_BRANCH,   /* TBB/TBH */
    C_VFP,            /* VADD/VSUB/VMUL/VABS/VNEG/VCMP/VCVT/VMOV/VMRS */
    C_VFP_MAC,        /* VMLA/VMLS/VNMLA/VNMLS/VFMA/VFMS/VFNMA/VFNMS */
    C_VFP_DIV,        /* VDIV/VSQRT */
    C_VFP_LOAD,       /* VLDR */
    C_VFP_STORE,      /* VSTR */
    C_VFP_LDM,        /* VLDM/VSTM/VPUSH/VPOP: + one per word (counted in `regs`) */
    C_COUNT
};

enum { K_INSNS, K_TAKEN, K_TAKEN_FLASH, K_FLASH_READS, K_FLASH_MISSES, K_REGS, K_CLASS0 };
#define N_COUNTERS (K_CLASS0 + C_COUNT)
static const char *const g_names[K_CLASS0] = {"insns", "taken", "taken_flash", "flash_reads",
                                              "flash_line_misses", "regs"};

/* A small flash data cache like the STM32 ART's: 8 lines of 16 bytes, fully associative, LRU. */
#define DLINES 8
#define DLINE_SHIFT 4
static uint64_t g_dline[DLINES];
static uint64_t g_dage[DLINES];
static uint64_t g_dclock;

static uint64_t g_cnt[N_COUNTERS];
static uint64_t g_base[N_COUNTERS];
static uint64_t g_start, g_stop, g_mark;
static uint64_t g_flash_lo, g_flash_hi;
static uint64_t g_expect_pc = UINT64_MAX; /* address right after the block executed last */
static int g_in_window;
static int g_in_hook; /* the per-layer hook reads the counter too: that call is not the stop */
static FILE *g_out;
static FILE *g_classes; /* optional: "pc class" of every translated instruction (tests) */

typedef struct {
    uint64_t start, end;
} tb_span;

static unsigned popcount16(uint32_t v) {
    return (unsigned)__builtin_popcount(v & 0xFFFFu);
}

/* Coprocessor space (VFP = coprocessors 10 and 11); *regs gets the words a VLDM/VSTM moves. */
static int classify_coproc(uint32_t hw1, uint32_t hw2, unsigned *regs) {
    unsigned cp = (hw2 >> 8) & 0xFu;
    if (cp != 10u && cp != 11u) {
        return C_ALU;
    }
    if ((hw1 & 0x0F00u) == 0x0E00u) { /* data processing or register transfer */
        if (hw2 & 0x10u) {
            return C_VFP; /* VMOV core<->S, VMRS/VMSR */
        }
        unsigned opc1 = ((hw1 >> 4) & 0x3u) | ((hw1 >> 5) & 0x4u); /* bits 23,21,20 */
        switch (opc1) {
        case 0: case 1: case 5: case 6:
            return C_VFP_MAC; /* VMLA/VMLS, VNMLA/VNMLS, VFNMA/VFNMS, VFMA/VFMS */
        case 4:
            return C_VFP_DIV;
        case 7:
            /* VSQRT: opc2 = 0001, opc3 = 11 */
            if ((hw1 & 0xFu) == 1u && (hw2 & 0xC0u) == 0xC0u) {
                return C_VFP_DIV;
            }
            return C_VFP;
        default:
            return C_VFP; /* VMUL/VNMUL, VADD/VSUB */
        }
    }
    unsigned op = (hw1 >> 4) & 0x1Fu; /* bits 24..20 of the 32-bit encoding (P U D W L) */
    if ((op & 0x1Eu) == 0x04u) {
        return C_VFP; /* VMOV two core registers <-> doubleword / two singles */
    }
    if ((op & 0x12u) == 0x10u) {
        return (op & 1u) ? C_VFP_LOAD : C_VFP_STORE; /* VLDR / VSTR (P=1, W=0) */
    }
    *regs = hw2 & 0xFFu; /* imm8 = words moved */
    return C_VFP_LDM;
}

static int classify32(uint32_t hw1, uint32_t hw2, unsigned *regs) {
    unsigned op1 = (hw1 >> 11) & 0x3u;
    unsigned op2 = (hw1 >> 4) & 0x7Fu;
    if (op1 == 1u) {
        if ((op2 & 0x64u) == 0x00u) { /* load/store multiple */
            *regs = popcount16(hw2);
            return C_LDM;
        }
        if ((op2 & 0x64u) == 0x04u) { /* dual, exclusive, table branch */
            if ((hw1 & 0xFFF0u) == 0xE8D0u && (hw2 & 0xE0u) == 0x00u) {
                return C_TABLE_BRANCH;
            }
            if ((op2 & 0x12u) == 0x00u && (op2 & 0x08u) == 0u) {
                return (op2 & 1u) ? C_LOAD : C_STORE; /* LDREX/STREX family */
            }
            return C_LDRD;
        }
        if ((op2 & 0x60u) == 0x20u) {
            return C_ALU; /* data processing (shifted register) */
        }
        return classify_coproc(hw1, hw2, regs);
    }
    if (op1 == 2u) {
        if (!(hw2 & 0x8000u)) {
            return C_ALU; /* data processing (modified / plain immediate) */
        }
        if ((hw2 & 0x5000u) == 0u && (hw1 & 0x0380u) == 0x0380u) {
            return C_ALU; /* MSR/MRS, hints, barriers */
        }
        return C_BRANCH; /* B<cond>, B, BL */
    }
    /* op1 == 3 */
    if ((op2 & 0x71u) == 0x00u) { /* store single */
        int reg_offset = !(hw1 & 0x80u) && (hw2 & 0x0FC0u) == 0u;
        return reg_offset ? C_STORE_REG : C_STORE;
    }
    if ((op2 & 0x67u) == 0x01u || (op2 & 0x67u) == 0x03u || (op2 & 0x67u) == 0x05u) {
        return C_LOAD;
    }
    if ((op2 & 0x70u) == 0x20u) {
        return C_ALU; /* data processing (register), parallel add/sub, misc */
    }
    if ((op2 & 0x78u) == 0x30u) {
        return C_MUL;
    }
    if ((op2 & 0x78u) == 0x38u) {
        unsigned o = op2 & 0x7u;
        if ((o == 1u || o == 3u) && (hw2 & 0xF0u) == 0xF0u) {
            return C_DIV;
        }
        return C_MUL;
    }
    if (op2 & 0x40u) {
        return classify_coproc(hw1, hw2, regs);
    }
    return C_ALU;
}

static int classify16(uint32_t hw, unsigned *regs) {
    unsigned top6 = hw >> 10;
    if ((hw & 0xFFC0u) == 0x4340u) {
        return C_MUL; /* MULS */
    }
    if (top6 == 0x11u) { /* special data processing, branch and exchange */
        if ((hw & 0xFF00u) == 0x4700u) {
            return C_BRANCH; /* BX/BLX */
        }
        unsigned rd = (hw & 7u) | ((hw >> 4) & 8u);
        if (rd == 15u && (hw & 0xFF00u) != 0x4500u) {
            return C_BRANCH; /* ADD/MOV to PC */
        }
        return C_ALU;
    }
    if ((hw & 0xF800u) == 0x4800u) {
        return C_LOAD; /* LDR literal */
    }
    if ((hw & 0xF000u) == 0x5000u) { /* load/store register offset */
        unsigned opb = (hw >> 9) & 7u;
        return opb <= 2u ? C_STORE_REG : C_LOAD;
    }
    if ((hw & 0xE000u) == 0x6000u || (hw & 0xF000u) == 0x8000u || (hw & 0xF000u) == 0x9000u) {
        return (hw & 0x0800u) ? C_LOAD : C_STORE; /* imm offset word/byte, halfword, SP */
    }
    if ((hw & 0xF600u) == 0xB400u) { /* PUSH / POP */
        *regs = popcount16(hw & 0xFFu) + ((hw >> 8) & 1u);
        return C_LDM;
    }
    if ((hw & 0xF500u) == 0xB100u) {
        return C_BRANCH; /* CBZ/CBNZ */
    }
    if ((hw & 0xF000u) == 0xC000u) { /* LDM/STM */
        *regs = popcount16(hw & 0xFFu);
        return C_LDM;
    }
    if ((hw & 0xF000u) == 0xD000u) {
        return ((hw >> 8) & 0xFu) >= 0xEu ? C_ALU : C_BRANCH; /* UDF/SVC : B<cond> */
    }
    if ((hw & 0xF800u) == 0xE000u) {
        return C_BRANCH;
    }
    return C_ALU;
}

static void latch(void) {
    memcpy(g_base, g_cnt, sizeof g_cnt);
}

static void emit(const char *prefix) {
    fputs(prefix, g_out);
    for (int k = 0; k < N_COUNTERS; ++k) {
        unsigned long long v = (unsigned long long)(g_cnt[k] - g_base[k]);
        if (k < K_CLASS0) {
            fprintf(g_out, "%s%s=%llu", k ? " " : "", g_names[k], v);
        } else {
            fprintf(g_out, " c%d=%llu", k - K_CLASS0, v);
        }
    }
    fputc('\n', g_out);
    fflush(g_out);
}

static void on_start(unsigned int vcpu, void *udata) {
    (void)vcpu;
    (void)udata;
    latch();
    g_in_window = 1;
    g_in_hook = 0;
    fputs("start\n", g_out);
}

static void on_stop(unsigned int vcpu, void *udata) {
    (void)vcpu;
    (void)udata;
    if (g_in_window && g_in_hook) {
        g_in_hook = 0;
    } else if (g_in_window) {
        emit("");
        g_in_window = 0;
    }
}

static void on_mark(unsigned int vcpu, void *udata) {
    (void)vcpu;
    (void)udata;
    if (g_in_window) {
        emit("mark ");
        g_in_hook = 1;
    }
}

static void on_tb(unsigned int vcpu, void *udata) {
    (void)vcpu;
    const tb_span *span = udata;
    if (span->start != g_expect_pc) {
        ++g_cnt[K_TAKEN];
        if (span->start >= g_flash_lo && span->start < g_flash_hi) {
            ++g_cnt[K_TAKEN_FLASH];
        }
    }
    g_expect_pc = span->end;
}

static void on_read(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *udata) {
    (void)vcpu;
    (void)udata;
    if (qemu_plugin_mem_is_store(info) || vaddr < g_flash_lo || vaddr >= g_flash_hi) {
        return;
    }
    ++g_cnt[K_FLASH_READS];
    uint64_t line = (vaddr >> DLINE_SHIFT) + 1u; /* 0 = empty slot */
    int victim = 0;
    for (int i = 0; i < DLINES; ++i) {
        if (g_dline[i] == line) {
            g_dage[i] = ++g_dclock;
            return;
        }
        if (g_dage[i] < g_dage[victim]) {
            victim = i;
        }
    }
    ++g_cnt[K_FLASH_MISSES];
    g_dline[victim] = line;
    g_dage[victim] = ++g_dclock;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (n == 0) {
        return;
    }
    tb_span *span = malloc(sizeof *span); /* lives as long as the translation may be reused */
    if (span == NULL) {
        return;
    }
    struct qemu_plugin_insn *last = qemu_plugin_tb_get_insn(tb, n - 1);
    span->start = qemu_plugin_tb_vaddr(tb);
    span->end = qemu_plugin_insn_vaddr(last) + qemu_plugin_insn_size(last);
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb, QEMU_PLUGIN_CB_NO_REGS, span);
    int prev = -1;
    for (size_t i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        /* markers first: the window excludes the start instruction and includes nothing of stop */
        if (pc == g_start) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (pc == g_stop) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (pc == g_mark) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        const uint8_t *b = qemu_plugin_insn_data(insn);
        size_t size = qemu_plugin_insn_size(insn);
        unsigned regs = 0;
        int cls = C_ALU;
        if (b != NULL && size >= 2) {
            uint32_t hw1 = (uint32_t)b[0] | ((uint32_t)b[1] << 8);
            if (size >= 4) {
                cls = classify32(hw1, (uint32_t)b[2] | ((uint32_t)b[3] << 8), &regs);
            } else {
                cls = classify16(hw1, &regs);
            }
        }
        int prev_load = prev == C_LOAD || prev == C_LOAD_PIPE;
        if (cls == C_LOAD && prev_load) {
            cls = C_LOAD_PIPE;
        } else if (cls == C_STORE_REG && prev_load) {
            cls = C_STORE_REG_PIPE;
        }
        prev = cls;
        if (g_classes != NULL) {
            fprintf(g_classes, "%llx %d\n", (unsigned long long)pc, cls);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &g_cnt[K_INSNS],
                                                   1);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                   &g_cnt[K_CLASS0 + cls], 1);
        if (regs != 0u) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64,
                                                       &g_cnt[K_REGS], regs);
        }
        int reads = cls == C_LOAD || cls == C_LOAD_PIPE || cls == C_LDRD || cls == C_LDM ||
                    cls == C_VFP_LOAD || cls == C_VFP_LDM || cls == C_TABLE_BRANCH;
        if (g_flash_hi > g_flash_lo && reads) { /* only instructions that can read data */
            /* QEMU 7.2 calls back only some reads when asked for MEM_R: ask for both */
            qemu_plugin_register_vcpu_mem_cb(insn, on_read, QEMU_PLUGIN_CB_NO_REGS,
                                             QEMU_PLUGIN_MEM_RW, NULL);
        }
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *udata) {
    (void)id;
    (void)udata;
    if (g_out != NULL) {
        fclose(g_out);
        g_out = NULL;
    }
    if (g_classes != NULL) {
        fclose(g_classes);
        g_classes = NULL;
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const qemu_info_t *info, int argc,
                                                               char **argv) {
    (void)info;
    const char *out = NULL;
    for (int i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "start=", 6) == 0) {
            g_start = strtoull(argv[i] + 6, NULL, 0);
        } else if (strncmp(argv[i], "stop=", 5) == 0) {
            g_stop = strtoull(argv[i] + 5, NULL, 0);
        } else if (strncmp(argv[i], "mark=", 5) == 0) {
            g_mark = strtoull(argv[i] + 5, NULL, 0);
        } else if (strncmp(argv[i], "flash=", 6) == 0) {
            char *end = NULL;
            g_flash_lo = strtoull(argv[i] + 6, &end, 0);
            g_flash_hi = (end != NULL && *end == ':') ? strtoull(end + 1, NULL, 0) : 0;
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out = argv[i] + 4;
        } else if (strncmp(argv[i], "classes=", 8) == 0) {
            g_classes = fopen(argv[i] + 8, "w");
        }
    }
    if (out == NULL || g_start == 0 || g_stop == 0) {
        return -1;
    }
    g_out = fopen(out, "w");
    if (g_out == NULL) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
