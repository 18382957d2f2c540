/* SPDX-License-Identifier: Apache-2.0 */
/* Reading (epoch, seq) from batches that did not decode, on arbitrary bytes: as CBOR, and as
 * a zstd frame (the first byte chooses), and the ledger's seq-set text. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deadletter.h"
#include "floe-alloc.h"
#include "seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
        if (!cond)
                abort();
}

static void seqset(const uint8_t *data, size_t size)
{
        struct upl_seqset s = {0};
        char *text = malloc(size + 1), *again = NULL;

        if (!text)
                return;
        memcpy(text, data, size);
        text[size] = '\0';
        if (upl_seqset_parse(&s, 3, text, 1000) == 0) {
                /* what parses prints back the same (when it had no NUL inside) */
                check(upl_seqset_format(&s, &again) == 0);
                if (strlen(text) == size)
                        check(strcmp(again, text) == 0);
                for (uint32_t i = 0; i < s.n; i++)
                        check(upl_seqset_has(&s, s.r[i].lo) && !upl_seqset_has(&s, s.r[i].lo - 1));
                floe_free(again);
        }
        upl_seqset_clear(&s);
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint64_t epoch = 0, seq = 0;
        int r;

        if (size == 0)
                return 0;
        switch (data[0] % 3) {
        case 0:
                r = upl_peek_seq_cbor(data + 1, size - 1, &epoch, &seq);
                break;
        case 1:
                r = upl_peek_seq(data + 1, size - 1, 1 << 20, &epoch, &seq);
                break;
        default:
                seqset(data + 1, size - 1);
                return 0;
        }
        check(r == 0 || r == -EBADMSG || r == -ENOMEM);
        return 0;
}
