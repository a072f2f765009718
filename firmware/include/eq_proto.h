/* edgeq host <-> firmware protocol: framing, checksum and command codes.
 *
 * A frame on the wire is COBS(raw) followed by one 0x00 delimiter, where
 *   raw = version(1) | code(1) | seq(1) | payload(0..EQP_MAX_PAYLOAD) | crc32_le(4)
 * and the CRC-32 (IEEE, reflected, as zlib.crc32) covers version..payload. Requests carry a
 * command code; replies carry code | EQP_REPLY, or EQP_ERROR with {error, command}. All integers
 * are little-endian. The codec is hardware-free so the host test suite can fuzz it with gcc.
 */
#ifndef EQ_PROTO_H
#define EQ_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define EQP_VERSION 1u
/* Largest payload per frame, reported in HELLO (the host sizes its chunks by it). 4 KB frames
 * keep a stop-and-wait link above 90 % of line rate over USB virtual COM ports up to ~2 Mbaud
 * (a reply turnaround of ~2 ms per 44 ms frame at 921,600 baud); the firmware holds three
 * frame buffers, so a board short of RAM may build with less (-DEQP_MAX_PAYLOAD=...). */
#ifndef EQP_MAX_PAYLOAD
#define EQP_MAX_PAYLOAD 4096u
#endif
#if EQP_MAX_PAYLOAD < 64u || EQP_MAX_PAYLOAD > 4096u
#error "EQP_MAX_PAYLOAD must be in 64..4096"
#endif
#define EQP_HEADER_BYTES 3u
#define EQP_CRC_BYTES 4u
#define EQP_MAX_RAW (EQP_HEADER_BYTES + EQP_MAX_PAYLOAD + EQP_CRC_BYTES)
#define EQP_MAX_ENCODED (EQP_MAX_RAW + EQP_MAX_RAW / 254u + 2u)

enum eqp_code {
    EQP_CMD_HELLO = 0x01,       /* -> device info */
    EQP_CMD_LOAD_INPUT = 0x02,  /* u8 input, u32 offset, bytes -> u32 offset, u16 count */
    EQP_CMD_INVOKE = 0x03,      /* u16 warmup, u16 runs -> u8 status, u16 runs */
    EQP_CMD_READ_OUTPUT = 0x04, /* u8 output, u32 offset, u16 count -> bytes */
    EQP_CMD_READ_TIMING = 0x05, /* u8 kind (0 runs, 1 layers), u16 first, u16 count -> u32[] */
    EQP_CMD_LAYER_INFO = 0x06,  /* u16 layer -> u32 macs, name bytes */
    EQP_ERROR = 0x7F,           /* reply: u8 error, u8 command */
    EQP_REPLY = 0x80
};

enum eqp_error {
    EQP_E_CRC = 1,
    EQP_E_VERSION = 2,
    EQP_E_OVERSIZE = 3,
    EQP_E_FRAMING = 4,
    EQP_E_UNKNOWN_CMD = 5,
    EQP_E_ARG = 6,
    EQP_E_INVOKE = 7,
    EQP_E_SHORT = 8
};

enum eqp_rx_event {
    EQP_RX_NONE = 0,
    EQP_RX_FRAME = 1,    /* rx->buf[0..rx->len) holds a decoded frame, its CRC already summed */
    EQP_RX_OVERSIZE = 2, /* a frame longer than EQP_MAX_RAW decoded bytes was dropped whole */
    EQP_RX_EMPTY = 3,    /* a delimiter with nothing before it */
    EQP_RX_BAD = 4       /* not valid COBS: a block cut short by the delimiter */
};

/* Byte-at-a-time receiver that decodes COBS and sums the CRC while bytes arrive, so a frame is
 * ready the moment its delimiter does: the reply turnaround no longer grows with the frame (a
 * 4 KB frame cost ~93,000 instructions of decoding and CRC after its last byte). Never writes
 * past buf. */
typedef struct {
    uint8_t buf[EQP_MAX_RAW]; /* decoded bytes */
    uint16_t len;
    uint8_t block_left; /* data bytes still to come in the current COBS block */
    uint8_t zero_next;  /* the current block ends in an implied zero (code < 0xFF) */
    uint8_t started;
    uint8_t overflow;
    uint32_t crc; /* CRC-32 register over buf[0..len-4): the trailing 4 bytes are the CRC */
} eqp_rx;

typedef struct {
    uint8_t code;
    uint8_t seq;
    const uint8_t *payload;
    uint16_t payload_len;
} eqp_frame;

void eqp_rx_reset(eqp_rx *rx);
/* Feed one byte; returns an eqp_rx_event. After EQP_RX_FRAME, handle the frame (eqp_parse_rx)
 * and call eqp_rx_reset before feeding more. */
int eqp_rx_push(eqp_rx *rx, uint8_t byte);
/* eqp_parse for a frame the receiver decoded, using the CRC it summed on the way. */
int eqp_parse_rx(const eqp_rx *rx, eqp_frame *f);

uint32_t eqp_crc32(const uint8_t *data, size_t n);
/* Returns the decoded length, or (size_t)-1 if the input is not valid COBS or does not fit.
 * out may equal in (decoding in place): every output byte lands before the input it came from. */
size_t eqp_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);
/* Returns the encoded length (without delimiter), or 0 if it does not fit in cap. */
size_t eqp_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* Checks version, length and CRC of a decoded frame; returns 0 or an eqp_error. On error
 * f->seq/f->code are filled when the header was readable (else 0). */
int eqp_parse(const uint8_t *raw, size_t n, eqp_frame *f);

/* Builds raw frame + COBS + delimiter into out; returns the byte count, 0 if it does not fit. */
size_t eqp_build(uint8_t code, uint8_t seq, const uint8_t *payload, size_t n, uint8_t *scratch,
                 size_t scratch_cap, uint8_t *out, size_t cap);

#endif
