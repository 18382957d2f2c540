/* SPDX-License-Identifier: Apache-2.0 */
/* The outbox's bytes: CRC-32C, record headers, meta slots, file names. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "outbox-internal.h"

/* CRC-32C (Castagnoli, reflected 0x82f63b78), slice-by-8. */
static uint32_t crc_table[8][256];
static bool crc_ready;

static void crc_init(void)
{
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;

                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82f63b78U : c >> 1;
                crc_table[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
                for (int j = 1; j < 8; j++)
                        crc_table[j][i] = (crc_table[j - 1][i] >> 8) ^
                                          crc_table[0][crc_table[j - 1][i] & 0xff];
        crc_ready = true;
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
        return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t outbox_crc32c(uint32_t crc, const void *data, size_t len)
{
        const uint8_t *p = data;

        if (!crc_ready)
                crc_init();
        crc = ~crc;
        while (len >= 8) {
                uint32_t lo = crc ^ le32(p), hi = le32(p + 4);

                crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
                      crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
                      crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
                      crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
                p += 8;
                len -= 8;
        }
        while (len--)
                crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return ~crc;
}

/*
 * Record header, little-endian:
 *   0 magic u32 | 4 version u8 | 5 kind u8 | 6 flags u16 | 8 len u32 | 12 events u32
 *   16 epoch u64 | 24 seq u64 | 32 header CRC u32 (bytes 0-31) | 36 CRC u32 (0-35 + payload)
 */
void outbox_hdr_encode(const struct outbox_hdr *h, const uint8_t *payload,
                       uint8_t out[OUTBOX_HDR_SIZE])
{
        uint32_t crc;

        put32(out, OUTBOX_MAGIC);
        out[4] = OUTBOX_VERSION;
        out[5] = h->kind;
        put16(out + 6, 0);
        put32(out + 8, h->len);
        put32(out + 12, h->events);
        put64(out + 16, h->epoch);
        put64(out + 24, h->seq);
        put32(out + 32, outbox_crc32c(0, out, 32));
        crc = outbox_crc32c(0, out, 36);
        put32(out + 36, outbox_crc32c(crc, payload, h->len));
}

int outbox_hdr_decode(const uint8_t in[OUTBOX_HDR_SIZE], struct outbox_hdr *ret)
{
        struct outbox_hdr h;

        if (le32(in) != OUTBOX_MAGIC || le32(in + 32) != outbox_crc32c(0, in, 32))
                return -EBADMSG;
        if (in[4] != OUTBOX_VERSION || in[6] != 0 || in[7] != 0)
                return -EBADMSG;
        h.kind = in[5];
        h.len = le32(in + 8);
        h.events = le32(in + 12);
        h.epoch = le64(in + 16);
        h.seq = le64(in + 24);
        h.crc = le32(in + 36);
        if (h.len == 0 || h.len > AGENT_OUTBOX_RECORD_MAX || h.events > AGENT_OUTBOX_EVENTS_MAX)
                return -EBADMSG;
        *ret = h;
        return 0;
}

/*
 * Meta slot, little-endian, 64 bytes:
 *   0 magic u32 | 4 version u16 | 6 zero u16 | 8 generation u64 | 16 epoch u64
 *   24 next_seq u64 | 32 done_below u64 | 40 zero[20] | 60 CRC u32 (bytes 0-59)
 */
void outbox_meta_encode(const struct outbox_meta *m, uint8_t out[OUTBOX_META_SLOT_SIZE])
{
        memset(out, 0, OUTBOX_META_SLOT_SIZE);
        put32(out, OUTBOX_META_MAGIC);
        put16(out + 4, OUTBOX_META_VERSION);
        put64(out + 8, m->gen);
        put64(out + 16, m->epoch);
        put64(out + 24, m->next_seq);
        put64(out + 32, m->done_below);
        put32(out + 60, outbox_crc32c(0, out, 60));
}

int outbox_meta_decode(const uint8_t in[OUTBOX_META_SLOT_SIZE], struct outbox_meta *ret)
{
        struct outbox_meta m;

        if (le32(in) != OUTBOX_META_MAGIC || le32(in + 60) != outbox_crc32c(0, in, 60))
                return -EBADMSG;
        if (in[4] != OUTBOX_META_VERSION || in[5] != 0 || in[6] != 0 || in[7] != 0)
                return -EBADMSG;
        m.gen = le64(in + 8);
        m.epoch = le64(in + 16);
        m.next_seq = le64(in + 24);
        m.done_below = le64(in + 32);
        if (m.epoch == 0 || m.next_seq < AGENT_OUTBOX_SEQ_FIRST ||
            m.next_seq > AGENT_OUTBOX_SEQ_MAX || m.done_below > m.next_seq)
                return -EBADMSG;
        *ret = m;
        return 0;
}

void outbox_seg_name(uint64_t seq, char *buf)
{
        snprintf(buf, OUTBOX_SEG_NAME_LEN + 1, "seg-%016" PRIx64 ".log", seq);
}

int outbox_seg_parse(const char *name, uint64_t *ret)
{
        uint64_t v = 0;

        if (strlen(name) != OUTBOX_SEG_NAME_LEN || memcmp(name, "seg-", 4) != 0 ||
            strcmp(name + 20, ".log") != 0)
                return -EINVAL;
        for (int i = 4; i < 20; i++) {
                char c = name[i];

                if (c >= '0' && c <= '9')
                        v = v << 4 | (uint64_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v = v << 4 | (uint64_t)(c - 'a' + 10);
                else
                        return -EINVAL;
        }
        if (v >= AGENT_OUTBOX_SEQ_MAX)
                return -EINVAL;
        *ret = v;
        return 0;
}

ssize_t outbox_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                done += (size_t)n;
        }
        return (ssize_t)done;
}

int outbox_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
        size_t done = 0;

        while (done < len) {
                ssize_t n =
                        pwrite(fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                done += (size_t)n;
        }
        return 0;
}

void outbox_set_err(char *err, size_t errsize, const char *what, int r)
{
        if (err && errsize > 0)
                snprintf(err, errsize, "%s: %s", what, strerror(-r));
}
