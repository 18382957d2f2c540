/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The uploader's acknowledgement of one batch: docs/wire-format.md §9. */

#include <stddef.h>
#include <stdint.h>

#define FLOE_ACK_MAX        256 /* bytes: larger messages are rejected unread */
#define FLOE_ACK_REASON_MAX 63

enum floe_ack_status {
        FLOE_ACK_OK,
        FLOE_ACK_DUPLICATE,
        FLOE_ACK_REJECTED,
};

struct floe_ack {
        uint64_t epoch;
        uint64_t seq;
        enum floe_ack_status status;
        char reason[FLOE_ACK_REASON_MAX + 1]; /* only with FLOE_ACK_REJECTED */
};

const char *floe_ack_status_name(enum floe_ack_status s);

/* -ENOSPC when buf is too small, -EINVAL for a bad status or reason. */
int floe_ack_encode(const struct floe_ack *a, uint8_t *buf, size_t size, size_t *ret_len);

/* -EBADMSG for anything that is not a valid version-1 ack, -EPROTONOSUPPORT
 * for another version, -EMSGSIZE beyond FLOE_ACK_MAX. */
int floe_ack_decode(const uint8_t *data, size_t len, struct floe_ack *ret);
