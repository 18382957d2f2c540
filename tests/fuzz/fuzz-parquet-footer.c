/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Parquet footer reader on a whole file from memory (the seeds are small
 * files: ours and DuckDB's), then on just its tail, then the report and the
 * JSON forms of what it accepted, and one injected allocation failure.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-cli.h"
#include "parquet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
        if (!cond)
                abort();
}

static void check_error(int r, const struct parquet_error *err)
{
        check(r == -EBADMSG || r == -E2BIG || r == -ENOMEM || r == -ENODATA || r == -EOPNOTSUPP ||
              r == -EINVAL);
        check(memchr(err->msg, '\0', sizeof(err->msg)) != NULL);
        check(err->msg[0] != '\0');
}

/* What an accepted footer promises its users. */
static void check_footer(const struct parquet_footer *f, uint64_t file_size)
{
        struct parquet_report *rep = NULL;
        int64_t rows = 0;
        json_t *j;
        char *s;

        check(f->n_leaves <= f->n_schema);
        check(f->metadata_offset + f->metadata_len + 8 == file_size);
        for (size_t i = 0; i < f->n_leaves; i++) {
                check(f->leaves[i] > 0 && f->leaves[i] < f->n_schema);
                check(f->schema[f->leaves[i]].type >= 0);
                check(f->max_rep[i] <= f->max_def[i]);
        }
        for (size_t g = 0; g < f->n_row_groups; g++) {
                const struct parquet_row_group *rg = &f->row_groups[g];

                check(rg->n_columns == f->n_leaves);
                rows += rg->num_rows;
                for (size_t i = 0; i < rg->n_columns; i++) {
                        const struct parquet_chunk *c = &rg->columns[i];

                        check(c->num_values >= 0 && c->total_compressed_size >= 0);
                        uint64_t start = (uint64_t)c->data_page_offset;

                        if (c->has_dictionary_page_offset &&
                            (uint64_t)c->dictionary_page_offset < start)
                                start = (uint64_t)c->dictionary_page_offset;
                        if (!c->file_path)
                                check(start >= 4 && start + (uint64_t)c->total_compressed_size <=
                                                            f->metadata_offset);
                        for (size_t k = 0; k < c->path_len; k++)
                                check(c->path[k] != NULL);
                }
        }
        check(rows == f->num_rows);
        (void)parquet_footer_get(f, "iceberg.schema");
        if (parquet_footer_report(f, file_size, &rep) < 0)
                return;
        check(rep->n_columns == f->n_leaves && rep->num_rows == (uint64_t)f->num_rows);
        for (size_t i = 0; i < rep->n_columns; i++) {
                const struct parquet_column_report *c = &rep->columns[i];

                check(!c->has_null_count || c->null_count <= c->value_count);
                check(!c->has_bounds || (c->lower.ptr && c->upper.ptr));
        }
        j = parquet_json_footer(f, rep);
        s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        free(s);
        json_decref(j);
        parquet_report_free(rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct parquet_footer *f = NULL;
        struct parquet_limits lim;
        struct parquet_error err;
        uint64_t allocs;
        uint32_t mlen;
        int r;

        parquet_limits_init(&lim);
        lim.max_list = 1 << 12;
        lim.max_string = 1 << 16;
        lim.max_columns = 1 << 10;
        lim.max_row_groups = 1 << 10;

        floe_alloc_fail_at(0);
        r = parquet_footer_read(data, size, size, &lim, &f, &err);
        allocs = floe_alloc_count();
        if (r < 0) {
                check(f == NULL);
                check_error(r, &err);
        } else {
                check_footer(f, size);
                f = parquet_footer_free(f);
        }

        /* only the tail of the same file: the same answer, except the leading magic */
        if (size >= 12 && parquet_footer_length(data + size - 8, &mlen) == 0 &&
            (uint64_t)mlen + 8 <= size) {
                int r2 =
                        parquet_footer_read(data + size - mlen - 8, mlen + 8, size, &lim, &f, &err);

                if (memcmp(data, "PAR1", 4) == 0)
                        check(r2 == r);
                else
                        check(r == -EBADMSG);
                if (r2 == 0)
                        f = parquet_footer_free(f);
                else
                        check_error(r2, &err);
        }

        /* one allocation failure, chosen by the input, fails cleanly */
        if (r == 0 && allocs > 0) {
                floe_alloc_fail_at(1 + size % allocs);
                r = parquet_footer_read(data, size, size, &lim, &f, &err);
                floe_alloc_fail_at(0);
                check(r == -ENOMEM && f == NULL);
                check_error(r, &err);
        }
        return 0;
}
