/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The batch wire format: one zstd frame holding one CBOR map.
 * docs/wire-format.md is normative; keep it and this codec in one change.
 */

#include <stddef.h>
#include <stdint.h>

#include "floe-batch.h"

#define FLOE_WIRE_SCALE_MAX     15
#define FLOE_WIRE_SCALE_F64     255
#define FLOE_WIRE_LEVEL_DEFAULT 1

/* Why a decoder rejected a batch. Stable names: they appear in counters and
 * dead-letter records. */
enum floe_wire_reason {
        FLOE_WIRE_OK = 0,
        FLOE_WIRE_TOO_LARGE,          /* compressed size over the limit */
        FLOE_WIRE_NOT_ZSTD,           /* not a zstd frame, or a skippable one */
        FLOE_WIRE_NO_CONTENT_SIZE,    /* frame header lacks the content size */
        FLOE_WIRE_NO_CHECKSUM,        /* frame header lacks the content checksum */
        FLOE_WIRE_DICTIONARY,         /* frame needs a zstd dictionary */
        FLOE_WIRE_INFLATED_TOO_LARGE, /* content size over the limit */
        FLOE_WIRE_TRAILING_DATA,      /* bytes after the frame */
        FLOE_WIRE_ZSTD_CORRUPT,       /* zstd refused the frame (incl. checksum) */
        FLOE_WIRE_CBOR_MALFORMED,     /* not well-formed CBOR, or truncated */
        FLOE_WIRE_CBOR_INDEFINITE,    /* indefinite-length item */
        FLOE_WIRE_CBOR_TRAILING,      /* bytes after the top-level map */
        FLOE_WIRE_NOT_A_MAP,
        FLOE_WIRE_DUPLICATE_KEY,
        FLOE_WIRE_UNKNOWN_KEY,
        FLOE_WIRE_MISSING_KEY,
        FLOE_WIRE_BAD_TYPE, /* a field has the wrong CBOR type */
        FLOE_WIRE_UNSUPPORTED_VERSION,
        FLOE_WIRE_BAD_IDENTITY,
        FLOE_WIRE_BAD_KIND,
        FLOE_WIRE_TOO_MANY_ROWS,
        FLOE_WIRE_DICT_TOO_LARGE,
        FLOE_WIRE_TOO_MANY_SERIES,
        FLOE_WIRE_STRING_TOO_LONG,
        FLOE_WIRE_BAD_STRING,      /* empty name, invalid UTF-8, control char */
        FLOE_WIRE_DUPLICATE_ENTRY, /* repeated dictionary string or series */
        FLOE_WIRE_BAD_VARINT,
        FLOE_WIRE_BAD_INDEX,     /* index outside its dictionary */
        FLOE_WIRE_COLUMN_LENGTH, /* column holds more or fewer values than rows */
        FLOE_WIRE_BAD_VALUE,     /* non-finite float, bad scale, out of range */
        FLOE_WIRE_NESTING,       /* extension value nested too deeply */
        FLOE_WIRE_NOMEM,
        FLOE_WIRE_REASON_MAX,
};

struct floe_wire_error {
        enum floe_wire_reason reason;
        char detail[160]; /* names the field and what was wrong */
};

const char *floe_wire_reason_name(enum floe_wire_reason r);
/* "reason: detail" */
void floe_wire_error_format(const struct floe_wire_error *e, char *buf, size_t size);

struct floe_wire_encoder;
struct floe_wire_decoder;

int floe_wire_encoder_new(int level, const struct floe_wire_limits *lim,
                          struct floe_wire_encoder **ret);
struct floe_wire_encoder *floe_wire_encoder_free(struct floe_wire_encoder *e);

/*
 * Serialises the batch. The result is owned by the encoder and valid until
 * the next call. -E2BIG when the frame exceeds max_compressed, -EINVAL for
 * a batch that breaks the format's rules (bad identity, kind, limits).
 * Reusing an encoder does not allocate once its buffers have grown.
 */
int floe_wire_encode(struct floe_wire_encoder *e, const struct floe_batch *b,
                     const uint8_t **ret_data, size_t *ret_len);

/* The CBOR map before compression (for tools and tests), same lifetime. */
int floe_wire_encode_raw(struct floe_wire_encoder *e, const struct floe_batch *b,
                         const uint8_t **ret_data, size_t *ret_len);

int floe_wire_decoder_new(const struct floe_wire_limits *lim, struct floe_wire_decoder **ret);
struct floe_wire_decoder *floe_wire_decoder_free(struct floe_wire_decoder *d);

/*
 * Decodes one wire batch into `b` (reset first, its capacity reused; its
 * limits are replaced by the decoder's). Returns 0, or a negative errno with
 * ret_err naming the reason: -EMSGSIZE for a limit, -EPROTONOSUPPORT for
 * an unknown version, -ENOMEM, -EBADMSG for anything malformed.
 */
int floe_wire_decode_into(struct floe_wire_decoder *d, const uint8_t *data, size_t len,
                          struct floe_batch *b, struct floe_wire_error *ret_err);

int floe_wire_decode(struct floe_wire_decoder *d, const uint8_t *data, size_t len,
                     struct floe_batch **ret, struct floe_wire_error *ret_err);

/* Decodes an uncompressed CBOR map (the payload of the frame). */
int floe_wire_decode_raw(struct floe_wire_decoder *d, const uint8_t *cbor, size_t len,
                         struct floe_batch *b, struct floe_wire_error *ret_err);
