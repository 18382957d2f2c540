/* SPDX-License-Identifier: Apache-2.0 */
/* [lake] and [s3]: the warehouse, catalog and store options from configuration. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "lake-conf.h"

const struct floe_config_key lake_conf_keys[] = {
        {"lake", "warehouse"},
        {"lake", "catalog"},
        {"lake", "catalog_name"},
        {"lake", "namespace"},
        {"lake", "fsync"},
        {"lake", "target_file_size"},
        {"lake", "row_group_size"},
        {"lake", "max_open_files"},
        {"s3", "endpoint"},
        {"s3", "region"},
        {"s3", "path_style"},
        {"s3", "storage_class"},
        {"s3", "ca_file"},
        {"s3", "credentials_file"},
        {"s3", "profile"},
        {"s3", "access_key"},
        {"s3", "secret_key"},
        {"s3", "session_token"},
        {"s3", "multipart_threshold"},
        {"s3", "part_size"},
        {"s3", "retries"},
        {"s3", "timeout"},
        {"s3", "list_page_size"},
        {NULL, NULL},
};

void lake_conf_init(struct lake_conf *c)
{
        *c = (struct lake_conf){0};
        lake_store_opts_default(&c->store);
}

void lake_conf_clear(struct lake_conf *c)
{
        floe_config_free(c->cfg);
        lake_conf_init(c);
}

static int str(const struct floe_config *cfg, const char *section, const char *key,
               const char **ret)
{
        return floe_config_get_string(cfg, section, key, *ret, ret);
}

int lake_conf_from(struct lake_conf *c, const struct floe_config *cfg,
                   struct floe_config_error *err)
{
        struct lake_store_opts *s = &c->store;
        uint64_t u = 0;
        int64_t i = 0;
        int r = 0;

        r = str(cfg, "lake", "warehouse", &c->warehouse);
        if (r == 0)
                r = str(cfg, "lake", "catalog", &c->catalog);
        if (r == 0)
                r = str(cfg, "lake", "catalog_name", &c->catalog_name);
        if (r == 0)
                r = str(cfg, "lake", "namespace", &c->ns);
        if (r == 0)
                r = floe_config_get_bool(cfg, "lake", "fsync", s->fsync, &s->fsync, err);
        if (r == 0)
                r = floe_config_get_size(cfg, "lake", "target_file_size", 0, 1, INT64_MAX,
                                         &c->writer.target_file_bytes, err);
        if (r == 0)
                r = floe_config_get_size(cfg, "lake", "row_group_size", 0, 4096, INT64_MAX,
                                         &c->writer.row_group_bytes, err);
        if (r == 0)
                r = floe_config_get_int64(cfg, "lake", "max_open_files", 0, 1, 4096, &i, err);
        if (r == 0)
                c->writer.max_open_files = (unsigned)i;
        if (r == 0)
                r = str(cfg, "s3", "endpoint", &s->endpoint);
        if (r == 0)
                r = str(cfg, "s3", "region", &s->region);
        if (r == 0)
                r = floe_config_get_bool(cfg, "s3", "path_style", s->path_style, &s->path_style,
                                         err);
        if (r == 0)
                r = str(cfg, "s3", "storage_class", &s->storage_class);
        if (r == 0)
                r = str(cfg, "s3", "ca_file", &s->ca_file);
        if (r == 0)
                r = str(cfg, "s3", "credentials_file", &s->credentials_file);
        if (r == 0)
                r = str(cfg, "s3", "profile", &s->profile);
        if (r == 0)
                r = str(cfg, "s3", "access_key", &s->access_key);
        if (r == 0)
                r = str(cfg, "s3", "secret_key", &s->secret_key);
        if (r == 0)
                r = str(cfg, "s3", "session_token", &s->session_token);
        if (r == 0)
                r = floe_config_get_size(cfg, "s3", "multipart_threshold", s->multipart_threshold,
                                         1, INT64_MAX, &s->multipart_threshold, err);
        if (r == 0)
                r = floe_config_get_size(cfg, "s3", "part_size", s->part_size, UINT64_C(5) << 20,
                                         UINT64_C(5) << 30, &s->part_size, err);
        if (r == 0)
                r = floe_config_get_int64(cfg, "s3", "retries", s->retries, 0, 100, &i, err);
        if (r == 0)
                s->retries = (unsigned)i;
        if (r == 0)
                r = floe_config_get_duration(cfg, "s3", "timeout", s->timeout_ms * 1000, 0,
                                             UINT64_C(86400) * 1000000, &u, err);
        if (r == 0)
                s->timeout_ms = u / 1000;
        if (r == 0)
                r = floe_config_get_int64(cfg, "s3", "list_page_size", s->list_page_size, 1, 1000,
                                          &i, err);
        if (r == 0)
                s->list_page_size = (unsigned)i;
        return r;
}

int lake_conf_load(struct lake_conf *c, const char *path, struct floe_config_error *err)
{
        static const char *const mine[] = {"lake", "s3", NULL};
        struct floe_config *cfg = NULL;
        int r;

        /* floe-lake -c /etc/floe/uploader.conf: the daemon's file and drop-ins, of which
         * [lake] and [s3] are ours and checked; the daemon checks the rest */
        r = floe_config_load_daemon(path, &cfg, err);
        if (r == 0)
                r = floe_config_check_known_in(cfg, lake_conf_keys, mine, err);
        if (r == 0)
                r = lake_conf_from(c, cfg, err);
        if (r < 0) {
                floe_config_free(cfg);
                return r;
        }
        floe_config_free(c->cfg);
        c->cfg = cfg;
        return 0;
}
