/* edgeq protocol codec: COBS framing and CRC-32, bounded everywhere (see eq_proto.h). */
#include "eq_proto.h"

#include <string.h>

void eqp_rx_reset(eqp_rx *rx) {
    rx->len = 0;
    rx->block_left = 0;
    rx->zero_next = 0;
    rx->started = 0;
    rx->overflow = 0;
    rx->crc = 0xFFFFFFFFu;
}

static uint32_t crc_step(uint32_t crc, uint8_t byte);

static void rx_append(eqp_rx *rx, uint8_t byte) {
    if (rx->len >= sizeof rx->buf) {
        rx->overflow = 1;
        return;
    }
    rx->buf[rx->len] = byte;
    if (rx->len >= EQP_CRC_BYTES) { /* the byte 4 back can no longer be part of the CRC */
        rx->crc = crc_step(rx->crc, rx->buf[rx->len - EQP_CRC_BYTES]);
    }
    rx->len++;
}

int eqp_rx_push(eqp_rx *rx, uint8_t byte) {
    if (byte == 0u) {
        int event = rx->overflow       ? EQP_RX_OVERSIZE
                    : !rx->started     ? EQP_RX_EMPTY
                    : rx->block_left   ? EQP_RX_BAD
                                       : EQP_RX_FRAME;
        if (event != EQP_RX_FRAME) {
            eqp_rx_reset(rx);
        }
        return event;
    }
    if (rx->overflow) {
        return EQP_RX_NONE;
    }
    rx->started = 1;
    if (rx->block_left == 0u) { /* a code byte: the previous block's implied zero, if any */
        if (rx->zero_next) {
            rx_append(rx, 0u);
        }
        rx->block_left = (uint8_t)(byte - 1u);
        rx->zero_next = byte != 0xFFu;
    } else {
        rx_append(rx, byte);
        rx->block_left--;
    }
    return EQP_RX_NONE;
}

/* CRC-32 (IEEE, reflected) four bits at a time: a 64-byte table instead of eight shifts per bit
 * or a 1 KB byte table. k_crc_nibble[n] is the CRC register after shifting nibble n out. */
static const uint32_t k_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

static uint32_t crc_step(uint32_t crc, uint8_t byte) {
    crc ^= byte;
    crc = (crc >> 4) ^ k_crc_nibble[crc & 0xFu];
    return (crc >> 4) ^ k_crc_nibble[crc & 0xFu];
}

uint32_t eqp_crc32(const uint8_t *data, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
        crc = crc_step(crc, data[i]);
    }
    return ~crc;
}

size_t eqp_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        if (code == 0u) {
            return (size_t)-1;
        }
        for (uint8_t k = 1; k < code; ++k) {
            if (i >= n || in[i] == 0u || o >= cap) {
                return (size_t)-1;
            }
            out[o++] = in[i++];
        }
        if (code != 0xFFu && i < n) {
            if (o >= cap) {
                return (size_t)-1;
            }
            out[o++] = 0u;
        }
    }
    return o;
}

size_t eqp_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    if (cap == 0u) {
        return 0;
    }
    size_t code_at = 0, o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; ++i) {
        if (in[i] == 0u) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
        } else {
            if (o >= cap) {
                return 0;
            }
            out[o++] = in[i];
            if (++code == 0xFFu) {
                out[code_at] = code;
                code_at = o++;
                code = 1;
            }
        }
        if (o > cap) {
            return 0;
        }
    }
    if (code_at >= cap) {
        return 0;
    }
    out[code_at] = code;
    return o;
}

static uint32_t read_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The checks of eqp_parse given the CRC of raw[0..n-4) (computed by the caller). */
static int parse_summed(const uint8_t *raw, size_t n, uint32_t crc, eqp_frame *f) {
    f->code = 0;
    f->seq = 0;
    f->payload = raw;
    f->payload_len = 0;
    if (n < EQP_HEADER_BYTES + EQP_CRC_BYTES) {
        return EQP_E_SHORT;
    }
    if (n > EQP_MAX_RAW) {
        return EQP_E_OVERSIZE;
    }
    size_t body = n - EQP_CRC_BYTES;
    if (crc != read_u32(raw + body)) {
        return EQP_E_CRC;
    }
    f->code = raw[1];
    f->seq = raw[2];
    if (raw[0] != EQP_VERSION) {
        return EQP_E_VERSION;
    }
    f->payload = raw + EQP_HEADER_BYTES;
    f->payload_len = (uint16_t)(body - EQP_HEADER_BYTES);
    return 0;
}

int eqp_parse(const uint8_t *raw, size_t n, eqp_frame *f) {
    uint32_t crc = n >= EQP_CRC_BYTES ? eqp_crc32(raw, n - EQP_CRC_BYTES) : 0u;
    return parse_summed(raw, n, crc, f);
}

int eqp_parse_rx(const eqp_rx *rx, eqp_frame *f) {
    return parse_summed(rx->buf, rx->len, ~rx->crc, f);
}

size_t eqp_build(uint8_t code, uint8_t seq, const uint8_t *payload, size_t n, uint8_t *scratch,
                 size_t scratch_cap, uint8_t *out, size_t cap) {
    size_t raw_len = EQP_HEADER_BYTES + n + EQP_CRC_BYTES;
    if (n > EQP_MAX_PAYLOAD || raw_len > scratch_cap) {
        return 0;
    }
    scratch[0] = (uint8_t)EQP_VERSION;
    scratch[1] = code;
    scratch[2] = seq;
    if (n > 0u) {
        memmove(scratch + EQP_HEADER_BYTES, payload, n);
    }
    uint32_t crc = eqp_crc32(scratch, EQP_HEADER_BYTES + n);
    for (int i = 0; i < 4; ++i) {
        scratch[EQP_HEADER_BYTES + n + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    size_t enc = eqp_cobs_encode(scratch, raw_len, out, cap > 0u ? cap - 1u : 0u);
    if (enc == 0u) {
        return 0;
    }
    out[enc] = 0u;
    return enc + 1u;
}
