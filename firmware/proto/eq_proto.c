/* edgeq protocol codec: COBS framing and CRC-32, bounded everywhere (see eq_proto.h). */
#include "eq_proto.h"

#include <string.h>

void eqp_rx_reset(eqp_rx *rx) {
    rx->len = 0;
    rx->overflow = 0;
}

int eqp_rx_push(eqp_rx *rx, uint8_t byte) {
    if (byte == 0u) {
        int event;
        if (rx->overflow) {
            event = EQP_RX_OVERSIZE;
        } else if (rx->len == 0u) {
            event = EQP_RX_EMPTY;
        } else {
            event = EQP_RX_FRAME;
        }
        rx->overflow = 0;
        if (event != EQP_RX_FRAME) {
            rx->len = 0;
        }
        return event;
    }
    if (rx->overflow) {
        return EQP_RX_NONE;
    }
    if (rx->len >= sizeof rx->buf) {
        rx->overflow = 1;
        rx->len = 0;
        return EQP_RX_NONE;
    }
    rx->buf[rx->len++] = byte;
    return EQP_RX_NONE;
}

/* CRC-32 (IEEE, reflected) four bits at a time: a 64-byte table instead of eight shifts per bit
 * or a 1 KB byte table. k_crc_nibble[n] is the CRC register after shifting nibble n out. */
static const uint32_t k_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t eqp_crc32(const uint8_t *data, size_t n) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
        crc ^= data[i];
        crc = (crc >> 4) ^ k_crc_nibble[crc & 0xFu];
        crc = (crc >> 4) ^ k_crc_nibble[crc & 0xFu];
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

int eqp_parse(const uint8_t *raw, size_t n, eqp_frame *f) {
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
    if (eqp_crc32(raw, body) != read_u32(raw + body)) {
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
