/* SPDX-License-Identifier: Apache-2.0 */
/* floe-uploader's configuration file. */
#include "upl-settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

#define SEC       UINT64_C(1000000)
#define DAY       (86400 * SEC)
#define MiB       (UINT64_C(1) << 20)
#define KNOWN_MAX 128

static const struct floe_config_key known[] = {
        {"broker", "host"},
        {"broker", "port"},
        {"broker", "ca_file"},
        {"broker", "cert_file"},
        {"broker", "key_file"},
        {"broker", "client_id"},
        {"broker", "share_group"},
        {"broker", "keepalive"},
        {"broker", "session_expiry"},
        {"broker", "backoff_min"},
        {"broker", "backoff_max"},
        {"broker", "inflight"},
        {"limits", "max_compressed"},
        {"limits", "max_decompressed"},
        {"limits", "max_rows"},
        {"limits", "max_dict"},
        {"limits", "max_series"},
        {"limits", "max_name"},
        {"limits", "max_text"},
        {"buffer", "size"},
        {"buffer", "interval"},
        {"buffer", "max_memory"},
        {"buffer", "retry_min"},
        {"buffer", "retry_max"},
        {"buffer", "stop_timeout"},
        {"buffer", "step"},
        {"table.events", "size"},
        {"table.events", "interval"},
        {"table.events", "add_columns"},
        {"table.aggregates", "size"},
        {"table.aggregates", "interval"},
        {"table.aggregates", "add_columns"},
        {"ledger", "max_ranges"},
        {"ledger", "cache_idle"},
        {"metrics", "listen"},
        {"dead_letters", "prefix"},
        {"maintenance", "enabled"},
        {"maintenance", "interval"},
        {"maintenance", "compact"},
        {"maintenance", "compact_min_files"},
        {"maintenance", "compact_small_fraction"},
        {"maintenance", "compact_target_size"},
        {"maintenance", "compact_min_snapshots"},
        {"maintenance", "compact_step"},
        {"maintenance", "expire"},
        {"maintenance", "expire_max_age"},
        {"maintenance", "expire_min_snapshots"},
        {"maintenance", "orphans"},
        {"maintenance", "orphan_min_age"},
        {"maintenance", "orphan_interval"},
        {"maintenance", "tier"},
        {"maintenance", "tier_max_files"},
        {NULL, NULL},
};

static int check_known(const struct floe_config *cfg, struct floe_config_error *err)
{
        struct floe_config_key keys[KNOWN_MAX];
        size_t n = 0;

        for (size_t i = 0; known[i].section; i++)
                keys[n++] = known[i];
        for (size_t i = 0; lake_conf_keys[i].section && n < KNOWN_MAX - 1; i++)
                keys[n++] = lake_conf_keys[i];
        for (size_t i = 0; ice_tier_conf_keys[i].section && n < KNOWN_MAX - 1; i++)
                keys[n++] = ice_tier_conf_keys[i];
        keys[n] = (struct floe_config_key){NULL, NULL};
        return floe_config_check_known(cfg, keys, err);
}

/* Names that go into topics and client ids: one topic level, no wildcards. */
static bool topic_level_ok(const char *s)
{
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (*s == '/' || *s == '+' || *s == '#' || (unsigned char)*s <= ' ' ||
                    (unsigned char)*s >= 0x7f)
                        return false;
        return true;
}

/* TLS files are checked now, not at the first connect: they exist and are regular files. */
static int check_file(const struct floe_config *cfg, const char *key, const char *path,
                      struct floe_config_error *err)
{
        if (!*path)
                return floe_config_key_error(cfg, "broker", key, -EINVAL, err,
                                             "the broker needs ca_file, cert_file and key_file");
        return floe_config_check_file(cfg, "broker", key, path, err);
}

static int load_broker(const struct floe_config *cfg, struct upl_settings *s,
                       struct floe_config_error *err)
{
        int r;

        floe_config_get_string(cfg, "broker", "host", "localhost", &s->host);
        floe_config_get_string(cfg, "broker", "ca_file", "/etc/floe/ca.pem", &s->ca_file);
        floe_config_get_string(cfg, "broker", "cert_file", "/etc/floe/floe-uploader.chain.pem",
                               &s->cert_file);
        floe_config_get_string(cfg, "broker", "key_file", "/etc/floe/floe-uploader.key",
                               &s->key_file);
        floe_config_get_string(cfg, "broker", "client_id", "floe-uploader", &s->client_id);
        floe_config_get_string(cfg, "broker", "share_group", "floe-uploaders", &s->share_group);
        if (!topic_level_ok(s->client_id))
                return floe_config_key_error(cfg, "broker", "client_id", -EINVAL, err,
                                             "1..64 printable characters without / + #");
        if (!topic_level_ok(s->share_group))
                return floe_config_key_error(cfg, "broker", "share_group", -EINVAL, err,
                                             "1..64 printable characters without / + #");
        r = floe_config_get_int64(cfg, "broker", "port", 8885, 1, 65535, &s->port, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "keepalive", 30 * SEC, 5 * SEC,
                                                65535 * SEC, &s->keepalive_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "session_expiry", 600 * SEC, 0,
                                                UINT32_MAX * SEC, &s->session_expiry_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "backoff_min", SEC, 1000, 3600 * SEC,
                                                &s->backoff_min_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "backoff_max", 60 * SEC, 1000,
                                                86400 * SEC, &s->backoff_max_us, err);
        r = r ?: floe_config_get_uint64(cfg, "broker", "inflight", 64, 1, 65535, &s->inflight, err);
        if (r < 0)
                return r;
        if (s->backoff_min_us > s->backoff_max_us)
                return floe_config_key_error(cfg, "broker", "backoff_min", -ERANGE, err,
                                             "larger than backoff_max");
        if (s->session_expiry_us % SEC)
                return floe_config_key_error(cfg, "broker", "session_expiry", -EINVAL, err,
                                             "must be whole seconds");
        r = check_file(cfg, "ca_file", s->ca_file, err);
        r = r ?: check_file(cfg, "cert_file", s->cert_file, err);
        return r ?: check_file(cfg, "key_file", s->key_file, err);
}

static int get_u32(const struct floe_config *cfg, const char *key, uint32_t *v, uint64_t min,
                   uint64_t max, struct floe_config_error *err)
{
        uint64_t u = 0;
        int r;

        r = floe_config_get_uint64(cfg, "limits", key, *v, min, max, &u, err);
        if (r == 0)
                *v = (uint32_t)u;
        return r;
}

static int load_limits(const struct floe_config *cfg, struct floe_wire_limits *l,
                       struct floe_config_error *err)
{
        uint64_t c = 0, d = 0;
        int r;

        floe_wire_limits_default(l);
        r = floe_config_get_size(cfg, "limits", "max_compressed", l->max_compressed, 1024,
                                 256 * MiB, &c, err);
        r = r
                    ?: floe_config_get_size(cfg, "limits", "max_decompressed", l->max_decompressed,
                                            1024, 1024 * MiB, &d, err);
        r = r ?: get_u32(cfg, "max_rows", &l->max_rows, 1, UINT32_MAX, err);
        r = r ?: get_u32(cfg, "max_dict", &l->max_dict, 1, UINT32_MAX / 2, err);
        r = r ?: get_u32(cfg, "max_series", &l->max_series, 1, UINT32_MAX / 2, err);
        r = r ?: get_u32(cfg, "max_name", &l->max_name_len, 1, 65535, err);
        r = r ?: get_u32(cfg, "max_text", &l->max_text_len, 1, 1 << 24, err);
        if (r < 0)
                return r;
        l->max_compressed = (size_t)c;
        l->max_decompressed = (size_t)d;
        return 0;
}

static bool column_name_ok(const char *s, size_t n)
{
        if (n == 0 || n >= sizeof(((struct upl_column *)0)->name))
                return false;
        if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
                        return false;
        return true;
}

/* "name:type, name:type": optional columns a table must have. */
static int parse_columns(const struct floe_config *cfg, const char *section, const char *text,
                         struct upl_table_settings *t, struct floe_config_error *err)
{
        const char *p = text;

        while (*p) {
                const char *end, *colon;
                struct upl_column *c;
                struct ice_type type;
                size_t n;

                p += strspn(p, " \t,");
                if (!*p)
                        break;
                end = p + strcspn(p, ",");
                while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
                        end--;
                colon = memchr(p, ':', (size_t)(end - p));
                if (t->n_add == UPL_ADD_COLUMNS_MAX)
                        return floe_config_key_error(cfg, section, "add_columns", -E2BIG, err,
                                                     "at most %d columns", UPL_ADD_COLUMNS_MAX);
                c = &t->add[t->n_add];
                n = colon ? (size_t)(colon - p) : 0;
                while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                        n--;
                if (!colon || !column_name_ok(p, n))
                        return floe_config_key_error(cfg, section, "add_columns", -EINVAL, err,
                                                     "expected name:type, the name of "
                                                     "[a-z_][a-z0-9_]* (at most 63)");
                memcpy(c->name, p, n);
                c->name[n] = '\0';
                colon++;
                colon += strspn(colon, " \t");
                n = colon < end ? (size_t)(end - colon) : 0;
                if (n == 0 || n >= sizeof(c->type))
                        return floe_config_key_error(cfg, section, "add_columns", -EINVAL, err,
                                                     "%s: no type", c->name);
                memcpy(c->type, colon, n);
                c->type[n] = '\0';
                if (ice_type_parse(c->type, &type) < 0 || !ice_type_is_primitive(&type))
                        return floe_config_key_error(cfg, section, "add_columns", -EINVAL, err,
                                                     "%s: \"%s\" is not an Iceberg primitive "
                                                     "type",
                                                     c->name, c->type);
                for (unsigned i = 0; i < t->n_add; i++)
                        if (strcmp(t->add[i].name, c->name) == 0)
                                return floe_config_key_error(cfg, section, "add_columns", -EINVAL,
                                                             err, "%s: listed twice", c->name);
                t->n_add++;
                p = end;
                p += strcspn(p, ",");
        }
        return 0;
}

static int load_tables(const struct floe_config *cfg, struct upl_settings *s,
                       struct floe_config_error *err)
{
        static const char *const sections[UPL_TABLES] = {"table.events", "table.aggregates"};
        uint64_t size = 0, interval = 0;
        int r;

        r = floe_config_get_size(cfg, "buffer", "size", 64 * MiB, UPL_SIZE_MIN, UPL_SIZE_MAX, &size,
                                 err);
        r = r
                    ?: floe_config_get_duration(cfg, "buffer", "interval", 10 * SEC, 0,
                                                UPL_INTERVAL_MAX, &interval, err);
        for (unsigned i = 0; r == 0 && i < UPL_TABLES; i++) {
                struct upl_table_settings *t = &s->table[i];
                const char *cols;

                r = floe_config_get_size(cfg, sections[i], "size", size, UPL_SIZE_MIN, UPL_SIZE_MAX,
                                         &t->size, err);
                r = r
                            ?: floe_config_get_duration(cfg, sections[i], "interval", interval, 0,
                                                        UPL_INTERVAL_MAX, &t->interval_us, err);
                floe_config_get_string(cfg, sections[i], "add_columns", "", &cols);
                r = r ?: parse_columns(cfg, sections[i], cols, t, err);
        }
        return r;
}

static int load_buffer(const struct floe_config *cfg, struct upl_settings *s,
                       struct floe_config_error *err)
{
        int r;

        r = floe_config_get_size(cfg, "buffer", "max_memory", 512 * MiB, 2 * MiB, UINT64_C(1) << 40,
                                 &s->max_memory, err);
        r = r
                    ?: floe_config_get_duration(cfg, "buffer", "retry_min", SEC, 1000, 3600 * SEC,
                                                &s->retry_min_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "buffer", "retry_max", 60 * SEC, 1000,
                                                86400 * SEC, &s->retry_max_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "buffer", "stop_timeout", 30 * SEC, 0,
                                                3600 * SEC, &s->stop_timeout_us, err);
        r = r
                    ?: floe_config_get_size(cfg, "buffer", "step", 4 * MiB, 4096, 1024 * MiB,
                                            &s->step_bytes, err);
        if (r < 0)
                return r;
        if (s->retry_min_us > s->retry_max_us)
                return floe_config_key_error(cfg, "buffer", "retry_min", -ERANGE, err,
                                             "larger than retry_max");
        for (unsigned i = 0; i < UPL_TABLES; i++)
                if (s->table[i].size > s->max_memory / 2)
                        return floe_config_key_error(cfg, "buffer", "max_memory", -ERANGE, err,
                                                     "must be at least twice every table's "
                                                     "buffer size");
        return 0;
}

/* "127.0.0.1:9477", "[::1]:9477" or "off": loopback only. */
static int load_metrics(const struct floe_config *cfg, struct upl_settings *s,
                        struct floe_config_error *err)
{
        const char *v, *colon, *host;
        unsigned char addr[16];
        size_t hlen;
        int64_t port = 0;

        floe_config_get_string(cfg, "metrics", "listen", UPL_METRICS_DEFAULT, &v);
        if (strcmp(v, "off") == 0)
                return 0;
        colon = strrchr(v, ':');
        if (!colon)
                goto bad;
        host = v;
        hlen = (size_t)(colon - v);
        if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
                host++;
                hlen -= 2;
        }
        if (hlen == 0 || hlen >= sizeof(s->metrics_host))
                goto bad;
        memcpy(s->metrics_host, host, hlen);
        s->metrics_host[hlen] = '\0';
        if (floe_parse_int64(colon + 1, &port) < 0 || port < 1 || port > 65535)
                goto bad;
        if (inet_pton(AF_INET, s->metrics_host, addr) == 1) {
                if (addr[0] != 127)
                        goto loopback;
        } else if (inet_pton(AF_INET6, s->metrics_host, addr) == 1) {
                static const unsigned char one[16] = {[15] = 1};

                if (memcmp(addr, one, 16) != 0)
                        goto loopback;
        } else {
                goto bad;
        }
        s->metrics_port = (int)port;
        s->metrics_enabled = true;
        return 0;
loopback:
        return floe_config_key_error(cfg, "metrics", "listen", -EINVAL, err,
                                     "%s is not a loopback address (the endpoint has no "
                                     "authentication)",
                                     s->metrics_host);
bad:
        return floe_config_key_error(cfg, "metrics", "listen", -EINVAL, err,
                                     "expected ADDRESS:PORT (127.0.0.1:9477, [::1]:9477) or off");
}

static int load_maint(const struct floe_config *cfg, struct upl_maint_settings *m,
                      struct floe_config_error *err)
{
        static const char S[] = "maintenance";
        int r;

        r = floe_config_get_bool(cfg, S, "enabled", true, &m->enabled, err);
        r = r
                    ?: floe_config_get_duration(cfg, S, "interval", 600 * SEC, SEC, DAY,
                                                &m->interval_us, err);
        r = r ?: floe_config_get_bool(cfg, S, "compact", true, &m->compact, err);
        r = r
                    ?: floe_config_get_uint64(cfg, S, "compact_min_files", 10, 2, 1000000,
                                              &m->compact_min_files, err);
        r = r
                    ?: floe_config_get_double(cfg, S, "compact_small_fraction", 0.75, 0.01, 1.0,
                                              &m->compact_small_fraction, err);
        r = r
                    ?: floe_config_get_size(cfg, S, "compact_target_size", 0, MiB,
                                            UINT64_C(64) << 30, &m->compact_target_size, err);
        r = r
                    ?: floe_config_get_uint64(cfg, S, "compact_min_snapshots", 10, 1, 1000000,
                                              &m->compact_min_snapshots, err);
        r = r
                    ?: floe_config_get_size(cfg, S, "compact_step", 128 * MiB, 0,
                                            UINT64_C(64) << 30, &m->compact_step, err);
        r = r ?: floe_config_get_bool(cfg, S, "expire", true, &m->expire, err);
        r = r
                    ?: floe_config_get_duration(cfg, S, "expire_max_age",
                                                UPL_EXPIRE_MAX_AGE_DEFAULT, SEC, 3650 * DAY,
                                                &m->expire_max_age_us, err);
        r = r
                    ?: floe_config_get_uint64(cfg, S, "expire_min_snapshots", 100, 1, 1000000,
                                              &m->expire_min_snapshots, err);
        r = r ?: floe_config_get_bool(cfg, S, "orphans", true, &m->orphans, err);
        r = r
                    ?: floe_config_get_duration(cfg, S, "orphan_min_age", 3 * DAY, 3600 * SEC,
                                                3650 * DAY, &m->orphan_min_age_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, S, "orphan_interval", DAY, 60 * SEC, 365 * DAY,
                                                &m->orphan_interval_us, err);
        r = r ?: floe_config_get_bool(cfg, S, "tier", true, &m->tier, err);
        return r
                       ?: floe_config_get_uint64(cfg, S, "tier_max_files", 1000, 0, 100000000,
                                                 &m->tier_max_files, err);
}

static int load_lake(const struct floe_config *cfg, struct upl_settings *s,
                     struct floe_config_error *err)
{
        int r;

        lake_conf_init(&s->lake);
        r = lake_conf_from(&s->lake, cfg, err);
        if (r < 0)
                return r;
        if (!s->lake.warehouse || !*s->lake.warehouse)
                s->lake.warehouse = UPL_WAREHOUSE_DEFAULT;
        if (!s->lake.catalog || !*s->lake.catalog)
                s->lake.catalog = UPL_CATALOG_DEFAULT;
        if (!s->lake.ns || !*s->lake.ns)
                s->lake.ns = "floe";
        if (!s->lake.catalog_name || !*s->lake.catalog_name)
                s->lake.catalog_name = "floe";
        /* a daemon's flushes: smaller row groups and fewer open files than a batch import */
        if (!s->lake.writer.row_group_bytes)
                s->lake.writer.row_group_bytes = 32 * MiB;
        if (!s->lake.writer.max_open_files)
                s->lake.writer.max_open_files = 8;
        return 0;
}

int upl_settings_load(const struct floe_config *cfg, struct upl_settings *ret,
                      struct floe_config_error *err)
{
        struct upl_settings s = {0};
        int r;

        r = check_known(cfg, err);
        r = r ?: load_broker(cfg, &s, err);
        r = r ?: load_limits(cfg, &s.limits, err);
        r = r ?: load_tables(cfg, &s, err);
        r = r ?: load_buffer(cfg, &s, err);
        r = r
                    ?: floe_config_get_uint64(cfg, "ledger", "max_ranges", 256, 4, 65536,
                                              &s.max_ranges, err);
        r = r
                    ?: floe_config_get_duration(cfg, "ledger", "cache_idle", 3600 * SEC, SEC,
                                                30 * 86400 * SEC, &s.cache_idle_us, err);
        r = r ?: load_metrics(cfg, &s, err);
        r = r ?: load_maint(cfg, &s.maint, err);
        r = r ?: load_lake(cfg, &s, err);
        r = r ?: ice_tier_conf_from(&s.tier, cfg, err);
        if (r < 0)
                return r;
        floe_config_get_string(cfg, "dead_letters", "prefix", "_dead_letters",
                               &s.dead_letter_prefix);
        if (!*s.dead_letter_prefix || lake_store_key_valid(s.dead_letter_prefix) < 0)
                return floe_config_key_error(cfg, "dead_letters", "prefix", -EINVAL, err,
                                             "not a valid key prefix in the warehouse");
        *ret = s;
        return 0;
}

int upl_config_load(const char *path, struct floe_config **ret_cfg, struct upl_settings *ret,
                    struct floe_config_error *err)
{
        struct floe_config *cfg = NULL;
        int r;

        r = floe_config_load_daemon(path, &cfg, err);
        if (r >= 0)
                r = upl_settings_load(cfg, ret, err);
        if (r < 0) {
                floe_config_free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}
