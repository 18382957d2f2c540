/* SPDX-License-Identifier: Apache-2.0 */
/* The Avro container reader and the Iceberg readers on top of it, on arbitrary bytes: they
 * must reject or read, never crash, hang or leak. Inputs starting with '{' go to the table
 * metadata parser instead, which must format what it accepts to JSON that parses to the same
 * text again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void metadata_round_trip(const uint8_t *data, size_t size)
{
        struct ice_metadata *md, *back;
        char *a, *b;

        if (ice_metadata_parse((const char *)data, size, &md, NULL, 0) < 0)
                return;
        if (ice_metadata_format(md, &a) < 0)
                abort();
        /* v1 tables are written as v2 and may miss what v2 requires: only v2 must round trip */
        if (ice_metadata_parse(a, strlen(a), &back, NULL, 0) < 0) {
                if (md->format_version == 2)
                        abort();
                floe_free(a);
                ice_metadata_free(md);
                return;
        }
        if (ice_metadata_format(back, &b) < 0 || strcmp(a, b) != 0)
                abort();
        floe_free(a);
        floe_free(b);
        ice_metadata_free(back);
        ice_metadata_free(md);
}

static void manifest(const uint8_t *data, size_t size)
{
        struct ice_manifest_file mf = {
                .path = (char *)"fuzz", .sequence_number = 3, .added_snapshot_id = 7};
        struct ice_manifest_reader *r;
        struct ice_manifest_entry e;
        int k;

        if (ice_manifest_reader_open(data, size, &mf, NULL, &r) < 0)
                return;
        while ((k = ice_manifest_reader_next(r, &e)) > 0) {
                /* what is read is complete */
                if (!e.file.path || !e.file.format || e.file.record_count < 0 ||
                    (e.status == ICE_STATUS_ADDED && !e.has_sequence_number))
                        abort();
                ice_manifest_entry_clear(&e);
        }
        ice_manifest_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ice_manifest_file *files;
        struct avro_limits lim;
        struct avro_reader *r;
        const struct avro_value *v;
        size_t n;
        int k;

        if (size > 0 && data[0] == '{') {
                metadata_round_trip(data, size);
                return 0;
        }
        /* small limits keep each run fast; the checks are the same */
        avro_limits_default(&lim);
        lim.max_block_bytes = 1u << 20;
        lim.max_datum_values = 1u << 16;
        if (avro_reader_open(data, size, &lim, &r, NULL, 0) == 0) {
                while ((k = avro_reader_next(r, &v)) > 0)
                        if (!v || !v->schema)
                                abort();
                avro_reader_free(r);
        }
        if (ice_manifest_list_read(data, size, &files, &n, NULL, 0) == 0) {
                for (size_t i = 0; i < n; i++)
                        if (!files[i].path || files[i].length < 0)
                                abort();
                ice_manifest_files_free(files, n);
        }
        manifest(data, size);
        return 0;
}
