/* SPDX-License-Identifier: Apache-2.0 */
/* Bucket lifecycle configurations as a server answers them (uploader/store/store-lifecycle.h) on
 * arbitrary bytes: the reader must never read out of bounds; what it keeps of the other rules
 * must be a part of the input; a document it accepts must come back whole from the one it would
 * PUT with no rules of ours: the same other rules, none of ours. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "store-lifecycle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *xml = (const char *)data;
        struct lake_lifecycle_config c, back;
        char *out = NULL;
        size_t len = 0;

        if (lake_lifecycle_parse(xml, size, NULL, &c) < 0)
                return 0;
        if (c.keep_len > size || c.keep[c.keep_len] != '\0')
                abort();
        for (size_t i = 0; i < c.n_ours; i++)
                if (strncmp(c.ours[i].id, "floe-", 5) != 0 ||
                    c.ours[i].n_transitions > LAKE_LIFECYCLE_TRANSITIONS)
                        abort();
        if (lake_lifecycle_xml(&c, NULL, 0, "", &out, &len) == 0) {
                if (lake_lifecycle_parse(out, len, NULL, &back) == 0) {
                        if (back.n_ours != 0 || back.n_keep != c.n_keep ||
                            back.keep_len != c.keep_len ||
                            memcmp(back.keep, c.keep, c.keep_len) != 0)
                                abort();
                        lake_lifecycle_config_clear(&back);
                }
                floe_free(out);
        }
        lake_lifecycle_config_clear(&c);
        return 0;
}
