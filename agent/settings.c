/* SPDX-License-Identifier: Apache-2.0 */
#include "settings.h"

#include <errno.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "board.h"
#include "floe-batch.h"
#include "outbox.h"
#include "ring.h"

static const struct floe_config_key known[] = {
        {"agent", "identity"},
        {"agent", "state_dir"},
        {"agent", "board"},
        {"agent", "tick"},
        {"local", "enabled"},
        {"local", "host"},
        {"local", "port"},
        {"local", "topics"},
        {"local", "topic_prefix"},
        {"local", "client_id"},
        {"local", "session_expiry"},
        {"local", "max_payload"},
        {"uplink", "enabled"},
        {"uplink", "host"},
        {"uplink", "port"},
        {"uplink", "ca_file"},
        {"uplink", "cert_file"},
        {"uplink", "key_file"},
        {"uplink", "keepalive"},
        {"uplink", "inflight"},
        {"uplink", "ack_timeout"},
        {"uplink", "backoff_min"},
        {"uplink", "backoff_max"},
        {"uplink", "bandwidth"},
        {"uplink", "status_interval"},
        {"ring", "path"},
        {"ring", "size"},
        {"ring", "sync"},
        {"ring", "sync_interval"},
        {"window", "length"},
        {"window", "grace"},
        {"window", "max_future"},
        {"window", "max_series"},
        {"batch", "ship"},
        {"batch", "max_events"},
        {"batch", "max_bytes"},
        {"batch", "max_age"},
        {"batch", "level"},
        {"outbox", "dir"},
        {"outbox", "max_bytes"},
        {"outbox", "segment_bytes"},
        {"outbox", "policy"},
        {"outbox", "sync"},
        {"metrics", "textfile"},
        {"metrics", "interval"},
        {"enroll", "claim_cert"},
        {"enroll", "claim_key"},
        {"enroll", "host"},
        {"enroll", "port"},
        {"enroll", "ca_file"},
        {"enroll", "identity"},
        {"enroll", "token"},
        {"enroll", "token_file"},
        {"enroll", "key_type"},
        {"enroll", "key_provider"},
        {"enroll", "key_propq"},
        {"enroll", "timeout"},
        {"enroll", "retry_min"},
        {"enroll", "retry_max"},
        {"enroll", "renew_at"},
        {"enroll", "renew_jitter"},
        {"enroll", "auto"},
        {NULL, NULL},
};

static const char *const key_types[] = {"p256", "p384", "rsa3072", NULL};

const char *agent_key_type_name(int type)
{
        return type >= 0 && type < _AGENT_KEY_TYPE_MAX ? key_types[type] : NULL;
}

#define KNOWN_MAX 256

/* The fixed keys plus every board's [board.<name>] keys. */
static int check_known(const struct floe_config *cfg, struct floe_config_error *err)
{
        static char sections[8][BOARD_NAME_MAX + 8];
        struct floe_config_key keys[KNOWN_MAX];
        size_t n = 0;

        for (; known[n].section; n++)
                keys[n] = known[n];
        for (size_t i = 0; i < 8 && board_at(i); i++) {
                const struct board_ops *b = board_at(i);

                if (board_section(b, sections[i], sizeof(sections[i])) < 0)
                        continue;
                for (const struct board_opt *o = b->opts; o && o->key && n < KNOWN_MAX - 1; o++)
                        keys[n++] = (struct floe_config_key){sections[i], o->key};
        }
        keys[n] = (struct floe_config_key){NULL, NULL};
        return floe_config_check_known(cfg, keys, err);
}

static int path_in(char *buf, size_t size, const char *dir, const char *name)
{
        return snprintf(buf, size, "%s/%s", dir, name) < (int)size ? 0 : -ENAMETOOLONG;
}

int agent_cert_cn(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "re");
        X509 *x;
        int n;

        if (!f)
                return -errno;
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (!x)
                return -EBADMSG;
        n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf, (int)size);
        X509_free(x);
        return n > 0 && (size_t)n < size ? 0 : -EBADMSG;
}

int agent_cert_days_left(const char *path, double *ret_days)
{
        FILE *f = fopen(path, "re");
        int days = 0, secs = 0;
        X509 *x;
        int ok;

        if (!f)
                return -errno;
        x = PEM_read_X509(f, NULL, NULL, NULL);
        fclose(f);
        if (!x)
                return -EBADMSG;
        ok = ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x));
        X509_free(x);
        if (!ok)
                return -EBADMSG;
        *ret_days = days + secs / 86400.0;
        return 0;
}

static int load_strings(const struct floe_config *cfg, struct agent_settings *s)
{
        floe_config_get_string(cfg, "agent", "state_dir", BOARD_STATE_DIR_DEFAULT, &s->state_dir);
        floe_config_get_string(cfg, "agent", "board", "sim", &s->board);
        floe_config_get_string(cfg, "local", "host", "127.0.0.1", &s->local_host);
        floe_config_get_string(cfg, "local", "topics", "sensors/#", &s->local_topics);
        floe_config_get_string(cfg, "local", "topic_prefix", "sensors/", &s->local_prefix);
        floe_config_get_string(cfg, "local", "client_id", "floe-agent", &s->local_client_id);
        floe_config_get_string(cfg, "uplink", "host", "localhost", &s->uplink_host);
        floe_config_get_string(cfg, "uplink", "ca_file", "/etc/floe/ca.pem", &s->ca_file);
        floe_config_get_string(cfg, "uplink", "cert_file", "", &s->cert_file);
        floe_config_get_string(cfg, "uplink", "key_file", "", &s->key_file);
        floe_config_get_string(cfg, "ring", "path", "", &s->ring_path);
        floe_config_get_string(cfg, "outbox", "dir", "", &s->outbox_dir);
        floe_config_get_string(cfg, "metrics", "textfile", "", &s->metrics_file);
        return 0;
}

static int derive_paths(const struct floe_config *cfg, struct agent_settings *s,
                        struct floe_config_error *err)
{
        int r = 0;

        if (!*s->ring_path) {
                r = path_in(s->ring_path_buf, sizeof(s->ring_path_buf), s->state_dir, "ring");
                s->ring_path = s->ring_path_buf;
        }
        if (r == 0 && !*s->outbox_dir) {
                r = path_in(s->outbox_dir_buf, sizeof(s->outbox_dir_buf), s->state_dir, "outbox");
                s->outbox_dir = s->outbox_dir_buf;
        }
        if (r == 0 && !*s->metrics_file) {
                r = path_in(s->metrics_file_buf, sizeof(s->metrics_file_buf), s->state_dir,
                            "floe-agent.prom");
                s->metrics_file = s->metrics_file_buf;
        }
        if (r == 0)
                r = path_in(s->rejected_dir_buf, sizeof(s->rejected_dir_buf), s->state_dir,
                            "rejected");
        if (r < 0)
                return floe_config_key_error(cfg, "agent", "state_dir", r, err, "path too long");
        return 0;
}

/* The uplink's TLS files are checked now, not at the first connect (or at the reconnect a
 * SIGHUP asks for): they exist and the certificate is one (floe_config_check_file leaves a file
 * this user may not read, `floe-agent status` run by an operator, to the daemon's user). */
/* No usable device certificate yet: what [enroll] needs to make one. */
static int check_enroll_files(const struct floe_config *cfg, const struct agent_settings *s,
                              struct floe_config_error *err)
{
        char cn[80];
        int r;

        r = floe_config_check_file(cfg, "enroll", "claim_cert", s->claim_cert, err);
        r = r ?: floe_config_check_file(cfg, "enroll", "claim_key", s->claim_key, err);
        if (r == 0 && *s->enroll_token_file)
                r = floe_config_check_file(cfg, "enroll", "token_file", s->enroll_token_file, err);
        if (r < 0)
                return r;
        r = agent_cert_cn(s->claim_cert, cn, sizeof(cn));
        if (r < 0 && r != -EACCES)
                return floe_config_key_error(cfg, "enroll", "claim_cert", r, err,
                                             "%s: no PEM certificate with a CN", s->claim_cert);
        if (r == 0 && strncmp(cn, "claim-", 6) != 0)
                return floe_config_key_error(cfg, "enroll", "claim_cert", -EINVAL, err,
                                             "%s: CN \"%.64s\" is not a claim (claim-...)",
                                             s->claim_cert, cn);
        return 0;
}

static int check_tls_files(const struct floe_config *cfg, struct agent_settings *s,
                           struct floe_config_error *err)
{
        static const char *const keys[] = {"ca_file", "cert_file", "key_file"};
        const char *const paths[] = {s->ca_file, s->cert_file, s->key_file};
        /* with a claim, a missing or broken device certificate is what enrollment fixes */
        bool can_enroll = s->enroll_enabled && s->enroll_claim;
        double days;
        int r;

        for (size_t i = 0; i < 3; i++) {
                r = floe_config_check_file(cfg, "uplink", keys[i], paths[i], err);
                if (r == -ENOENT && i > 0 && can_enroll) {
                        s->cert_missing = true;
                        continue;
                }
                if (r < 0)
                        return r;
        }
        if (s->enroll_enabled && strcmp(s->enroll_ca_file, s->ca_file) != 0) {
                r = floe_config_check_file(cfg, "enroll", "ca_file", s->enroll_ca_file, err);
                if (r < 0)
                        return r;
        }
        if (!s->cert_missing) {
                r = agent_cert_days_left(s->cert_file, &days);
                if (r == -EBADMSG && can_enroll)
                        s->cert_missing = true;
                else if (r < 0 && r != -EACCES)
                        return floe_config_key_error(
                                cfg, "uplink", "cert_file", r, err, "%s: %s", s->cert_file,
                                r == -EBADMSG ? "no PEM certificate" : strerror(-r));
        }
        if (s->cert_missing)
                return check_enroll_files(cfg, s, err);
        return 0;
}

static bool identity_ok(const char *id)
{
        return strlen(id) < sizeof(((struct agent_settings *)0)->identity) &&
               floe_identity_valid(id, strlen(id));
}

/* [agent] identity, else the installed certificate's CN, else [enroll] identity. */
static int load_identity(const struct floe_config *cfg, struct agent_settings *s,
                         struct floe_config_error *err)
{
        const char *id, *eid = "", *from = "[agent] identity";
        int r;

        floe_config_get_string(cfg, "agent", "identity", "", &id);
        if (s->enroll_enabled)
                floe_config_get_string(cfg, "enroll", "identity", "", &eid);
        if (!*id && s->uplink_enabled && *s->cert_file && !s->cert_missing) {
                r = agent_cert_cn(s->cert_file, s->identity, sizeof(s->identity));
                if (r < 0 && !(s->enroll_enabled && *eid))
                        return floe_config_key_error(cfg, "uplink", "cert_file", r, err,
                                                     "cannot read the identity (CN) from %s: %s",
                                                     s->cert_file, strerror(-r));
                if (r == 0) {
                        id = s->identity;
                        from = "the certificate's CN";
                }
        }
        if (!*id && *eid) {
                if (!identity_ok(eid))
                        return floe_config_key_error(cfg, "enroll", "identity", -EINVAL, err,
                                                     "\"%s\" is not <tenant>.<device>", eid);
                id = eid;
        }
        if (!*id)
                return floe_config_key_error(
                        cfg, "agent", "identity", -EINVAL, err, "no identity: set it, %s",
                        s->enroll_enabled ? "[enroll] identity, or a device certificate"
                                          : "or a device certificate");
        if (!identity_ok(id))
                return floe_config_key_error(cfg, "agent", "identity", -EINVAL, err,
                                             "\"%s\" is not <tenant>.<device>", id);
        if (id != s->identity)
                memmove(s->identity, id, strlen(id) + 1);
        if (!s->enroll_enabled)
                return 0;
        if (*eid && strcmp(eid, s->identity) != 0)
                return floe_config_key_error(cfg, "enroll", "identity", -EINVAL, err,
                                             "\"%s\" is not the agent's identity %s (%s)", eid,
                                             s->identity, from);
        memcpy(s->enroll_identity, s->identity, strlen(s->identity) + 1);
        return 0;
}

static int is_enroll_section(const char *section, void *ud)
{
        (void)ud;
        return strcmp(section, "enroll") == 0;
}

static bool token_ok(const char *t)
{
        size_t n = strlen(t);

        if (n == 0 || n > 64)
                return false;
        return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* [enroll]: only read when the section exists; without it the agent never enrolls. */
static int load_enroll(const struct floe_config *cfg, struct agent_settings *s,
                       struct floe_config_error *err)
{
        char section[BOARD_NAME_MAX + 8];
        const char *board_key = "";
        int r;

        s->enroll_enabled = floe_config_foreach_section(cfg, "enroll", is_enroll_section, NULL) > 0;
        if (!s->enroll_enabled)
                return 0;
        floe_config_get_string(cfg, "enroll", "claim_cert", "", &s->claim_cert);
        floe_config_get_string(cfg, "enroll", "claim_key", "", &s->claim_key);
        floe_config_get_string(cfg, "enroll", "host", s->uplink_host, &s->enroll_host);
        floe_config_get_string(cfg, "enroll", "ca_file", s->ca_file, &s->enroll_ca_file);
        floe_config_get_string(cfg, "enroll", "token", "", &s->enroll_token);
        floe_config_get_string(cfg, "enroll", "token_file", "", &s->enroll_token_file);
        floe_config_get_string(cfg, "enroll", "key_provider", "", &s->key_provider);
        floe_config_get_string(cfg, "enroll", "key_propq", "", &s->key_propq);
        r = floe_config_get_int64(cfg, "enroll", "port", 8884, 1, 65535, &s->enroll_port, err);
        r = r
                    ?: floe_config_get_enum(cfg, "enroll", "key_type", key_types, AGENT_KEY_P256,
                                            &s->enroll_key_type, err);
        r = r
                    ?: floe_config_get_duration(cfg, "enroll", "timeout", 30000000, 1000000,
                                                3600000000ULL, &s->enroll_timeout_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "enroll", "retry_min", 5000000, 10000,
                                                3600000000ULL, &s->enroll_retry_min_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "enroll", "retry_max", 3600000000ULL, 10000,
                                                7 * 86400000000ULL, &s->enroll_retry_max_us, err);
        r = r
                    ?: floe_config_get_double(cfg, "enroll", "renew_at", 0.667, 0.05, 0.95,
                                              &s->renew_at, err);
        r = r
                    ?: floe_config_get_duration(cfg, "enroll", "renew_jitter", 6 * 3600000000ULL, 0,
                                                30 * 86400000000ULL, &s->renew_jitter_us, err);
        r = r ?: floe_config_get_bool(cfg, "enroll", "auto", true, &s->enroll_auto, err);
        if (r < 0)
                return r;
        if (!*s->claim_cert != !*s->claim_key)
                return floe_config_key_error(cfg, "enroll",
                                             *s->claim_cert ? "claim_cert" : "claim_key", -EINVAL,
                                             err, "claim_cert and claim_key go together");
        s->enroll_claim = *s->claim_cert != '\0';
        if (s->enroll_retry_min_us > s->enroll_retry_max_us)
                return floe_config_key_error(cfg, "enroll", "retry_min", -ERANGE, err,
                                             "larger than retry_max");
        if (*s->enroll_token && *s->enroll_token_file)
                return floe_config_key_error(cfg, "enroll", "token_file", -EINVAL, err,
                                             "token and token_file are exclusive");
        /* never quoted: a token is a secret */
        if (*s->enroll_token && !token_ok(s->enroll_token))
                return floe_config_key_error(
                        cfg, "enroll", "token", -EINVAL, err,
                        "not a token (1 to 64 letters, digits, '-', '_', '.')");
        if (*s->cert_file && *s->key_file)
                return 0;
        /* the device's own certificate goes to the state directory, its key where the board
         * keeps it (board.h: [board.<name>] key, else <state_dir>/device.key) */
        if (!*s->cert_file) {
                r = path_in(s->cert_file_buf, sizeof(s->cert_file_buf), s->state_dir, "device.pem");
                if (r < 0)
                        return floe_config_key_error(cfg, "agent", "state_dir", r, err,
                                                     "path too long");
                s->cert_file = s->cert_file_buf;
        }
        if (!*s->key_file) {
                r = board_section(board_find(s->board), section, sizeof(section));
                if (r == 0)
                        floe_config_get_string(cfg, section, "key", "", &board_key);
                r = r
                            ?: board_key_resolve(cfg, section, board_key, true, s->key_file_buf,
                                                 sizeof(s->key_file_buf), err);
                if (r < 0)
                        return r;
                if (strncmp(s->key_file_buf, "handle:", 7) == 0)
                        return floe_config_key_error(
                                cfg, section, "key", -EINVAL, err,
                                "a TPM persistent handle: enrollment writes its key to a file "
                                "(with key_provider = tpm2, a TPM-wrapped one): set [uplink] "
                                "key_file");
                s->key_file = s->key_file_buf;
        }
        return 0;
}

int agent_settings_load(const struct floe_config *cfg, struct agent_settings *ret,
                        struct floe_config_error *err)
{
        static const char *const ships[] = {"", "events", "aggregates", "both", NULL};
        static const char *const policies[] = {"drop-oldest", "reject-new", NULL};
        static const char *const osync[] = {"batch", "none", NULL};
        static const char *const rsync[] = {"none", "interval", "always", NULL};
        struct agent_settings s = {0};
        int ship = AGENT_SHIP_BOTH;
        int r;

        r = check_known(cfg, err);
        if (r < 0)
                return r;
        load_strings(cfg, &s);
        r = floe_config_get_duration(cfg, "agent", "tick", 100000, 10000, 1000000, &s.tick_us, err);
        r = r ?: floe_config_get_bool(cfg, "local", "enabled", true, &s.local_enabled, err);
        r = r ?: floe_config_get_int64(cfg, "local", "port", 1883, 1, 65535, &s.local_port, err);
        r = r
                    ?: floe_config_get_duration(cfg, "local", "session_expiry", 3600000000ULL, 0,
                                                UINT32_MAX * 1000000ULL, &s.local_session_expiry_us,
                                                err);
        r = r
                    ?: floe_config_get_size(cfg, "local", "max_payload", 256 << 10, 64, 256 << 20,
                                            &s.max_payload, err);
        r = r ?: floe_config_get_bool(cfg, "uplink", "enabled", true, &s.uplink_enabled, err);
        r = r ?: floe_config_get_int64(cfg, "uplink", "port", 8883, 1, 65535, &s.uplink_port, err);
        r = r
                    ?: floe_config_get_duration(cfg, "uplink", "keepalive", 30000000, 5000000,
                                                65535000000ULL, &s.keepalive_us, err);
        r = r ?: floe_config_get_uint64(cfg, "uplink", "inflight", 8, 1, 1024, &s.inflight, err);
        r = r
                    ?: floe_config_get_duration(cfg, "uplink", "ack_timeout", 30000000, 100000,
                                                3600000000ULL, &s.ack_timeout_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "uplink", "backoff_min", 1000000, 1000,
                                                3600000000ULL, &s.backoff_min_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "uplink", "backoff_max", 300000000, 1000,
                                                86400000000ULL, &s.backoff_max_us, err);
        r = r
                    ?: floe_config_get_size(cfg, "uplink", "bandwidth", 0, 0, UINT64_MAX,
                                            &s.bandwidth, err);
        r = r
                    ?: floe_config_get_duration(cfg, "uplink", "status_interval", 60000000, 0,
                                                86400000000ULL, &s.status_interval_us, err);
        r = r
                    ?: floe_config_get_size(cfg, "ring", "size", AGENT_RING_SIZE_DEFAULT,
                                            AGENT_RING_SIZE_MIN, AGENT_RING_SIZE_MAX, &s.ring_size,
                                            err);
        r = r
                    ?: floe_config_get_enum(cfg, "ring", "sync", rsync, AGENT_RING_SYNC_INTERVAL,
                                            &s.ring_sync, err);
        r = r
                    ?: floe_config_get_duration(cfg, "ring", "sync_interval", 1000000, 10000,
                                                3600000000ULL, &s.ring_sync_interval_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "window", "length", 60000000, 1000000,
                                                86400000000ULL, &s.window_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "window", "grace", 5000000, 0, 3600000000ULL,
                                                &s.grace_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "window", "max_future", 600000000, 0,
                                                86400000000ULL * 365, &s.max_future_us, err);
        r = r
                    ?: floe_config_get_uint64(cfg, "window", "max_series", 65536, 1, 1 << 24,
                                              &s.max_series, err);
        r = r ?: floe_config_get_enum(cfg, "batch", "ship", ships, AGENT_SHIP_BOTH, &ship, err);
        r = r
                    ?: floe_config_get_uint64(cfg, "batch", "max_events", 50000, 1, 1 << 20,
                                              &s.batch_max_events, err);
        r = r
                    ?: floe_config_get_size(cfg, "batch", "max_bytes", 1 << 20, 1024, 4 << 20,
                                            &s.batch_max_bytes, err);
        r = r
                    ?: floe_config_get_duration(cfg, "batch", "max_age", 10000000, 1000,
                                                3600000000ULL, &s.batch_max_age_us, err);
        r = r ?: floe_config_get_int64(cfg, "batch", "level", 1, 1, 19, &s.level, err);
        r = r
                    ?: floe_config_get_size(cfg, "outbox", "max_bytes",
                                            AGENT_OUTBOX_MAX_BYTES_DEFAULT, 8 << 10, UINT64_MAX / 2,
                                            &s.outbox_max_bytes, err);
        r = r
                    ?: floe_config_get_size(cfg, "outbox", "segment_bytes",
                                            AGENT_OUTBOX_SEGMENT_BYTES_DEFAULT, 1024, 1ULL << 30,
                                            &s.outbox_segment_bytes, err);
        r = r ?: floe_config_get_enum(cfg, "outbox", "policy", policies, 0, &s.outbox_policy, err);
        r = r ?: floe_config_get_enum(cfg, "outbox", "sync", osync, 0, &s.outbox_sync, err);
        r = r
                    ?: floe_config_get_duration(cfg, "metrics", "interval", 15000000, 100000,
                                                3600000000ULL, &s.metrics_interval_us, err);
        if (r < 0)
                return r;
        if (ship == 0)
                return floe_config_key_error(cfg, "batch", "ship", -EINVAL, err,
                                             "expected events, aggregates or both");
        s.ship = (enum agent_ship)ship;
        if (!board_find(s.board))
                return floe_config_key_error(cfg, "agent", "board", -EINVAL, err,
                                             "unknown board \"%s\" (sim, linux-generic, rpi)",
                                             s.board);
        r = load_enroll(cfg, &s, err);
        if (r < 0)
                return r;
        if (s.uplink_enabled && (!*s.cert_file || !*s.key_file))
                return floe_config_key_error(cfg, "uplink", "cert_file", -EINVAL, err,
                                             "the uplink needs cert_file and key_file");
        if (s.backoff_min_us > s.backoff_max_us)
                return floe_config_key_error(cfg, "uplink", "backoff_min", -ERANGE, err,
                                             "larger than backoff_max");
        if (s.window_us % 1000000)
                return floe_config_key_error(cfg, "window", "length", -EINVAL, err,
                                             "must be whole seconds");
        if (s.grace_us >= s.window_us)
                return floe_config_key_error(cfg, "window", "grace", -ERANGE, err,
                                             "must be shorter than the window length");
        r = derive_paths(cfg, &s, err);
        if (r == 0 && s.uplink_enabled)
                r = check_tls_files(cfg, &s, err);
        r = r ?: load_identity(cfg, &s, err);
        if (r < 0)
                return r;
        *ret = s;
        /* the derived paths point into the copy */
        if (s.ring_path == s.ring_path_buf)
                ret->ring_path = ret->ring_path_buf;
        if (s.outbox_dir == s.outbox_dir_buf)
                ret->outbox_dir = ret->outbox_dir_buf;
        if (s.metrics_file == s.metrics_file_buf)
                ret->metrics_file = ret->metrics_file_buf;
        if (s.cert_file == s.cert_file_buf)
                ret->cert_file = ret->cert_file_buf;
        if (s.key_file == s.key_file_buf)
                ret->key_file = ret->key_file_buf;
        return 0;
}
