/* SPDX-License-Identifier: Apache-2.0 */
/* `floe-agent enroll`: one enrollment by claim, in the foreground. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "enroll-client.h"
#include "floe-alloc.h"
#include "floe-batch.h"
#include "floe-log.h"

struct run {
        sd_event *event;
        struct agent_enroll_result res;
        bool done;
};

static void on_done(void *ud, const struct agent_enroll_result *res)
{
        struct run *run = ud;

        run->res = *res;
        run->done = true;
        sd_event_exit(run->event, 0);
}

static const char *utc(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm))
                snprintf(buf, size, "%lld", (long long)t);
        return buf;
}

static bool token_chars(const char *t)
{
        size_t n = strlen(t);

        return n > 0 && n <= 64 &&
               strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == n;
}

/* The configuration as the daemon reads it, with the command line's identity and token
 * as the last word (a drop-in of their own). */
static int load(const char *config, const char *identity, const char *token,
                struct floe_config **ret_cfg, struct agent_settings *ret)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        char msg[600], *text = NULL;
        size_t n = 0;
        int r;

        r = floe_config_load_daemon(config, &cfg, &err);
        if (r == 0 && (identity || token)) {
                n = 64 + (identity ? strlen(identity) : 0) + (token ? strlen(token) : 0);
                text = floe_malloc(n);
                if (!text) {
                        r = -ENOMEM;
                        goto out;
                }
                snprintf(text, n, "[enroll]\n%s%s%s%s%s%s", identity ? "identity = " : "",
                         identity ? identity : "", identity ? "\n" : "", token ? "token = " : "",
                         token ? token : "", token ? "\ntoken_file = \n" : "");
                r = floe_config_add_string(cfg, "command line", text, strlen(text), &err);
        }
        if (r == 0)
                r = agent_settings_load(cfg, ret, &err);
out:
        agent_enroll_secret_free(text);
        if (r < 0) {
                log_error("%s", floe_config_error_format(&err, msg, sizeof(msg)));
                floe_config_free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}

/* Whether the installed pair is already good; finishes an interrupted install. */
static int already(const struct agent_settings *s, const struct agent_enroll_files *f)
{
        enum agent_cert_problem p = AGENT_CERT_MISSING;
        struct agent_cert_info info;
        char why[200], until[40];
        bool staged;
        int r;

        r = agent_enroll_recover(f, s->key_propq, s->enroll_identity, s->enroll_ca_file,
                                 (int64_t)time(NULL), &staged, &p, &info, why, sizeof(why));
        if (r < 0 && r != -EBADMSG)
                return log_error_errno(r, "%s", s->cert_file);
        if (p != AGENT_CERT_OK) {
                log_info("enroll: device certificate: %s", why);
                return 0;
        }
        printf("already enrolled as %s: serial %s, valid until %s (%s); --force enrolls "
               "again\n",
               info.identity, info.serial, utc(info.not_after, until, sizeof(until)), s->cert_file);
        return 1;
}

int agent_enroll_command(const char *config, const char *identity, const char *token, bool force)
{
        struct agent_enroll_client_opts o = {0};
        struct agent_enroll_client *c = NULL;
        struct agent_enroll_files files;
        struct floe_config *cfg = NULL;
        struct agent_settings s;
        struct run run = {0};
        char *tok = NULL, until[40];
        int r, status = 1;

        if (identity && !floe_identity_valid(identity, strlen(identity))) {
                fprintf(stderr, "floe-agent: --identity: not <tenant>.<device>\n");
                return 2;
        }
        if (token && !token_chars(token)) {
                fprintf(stderr, "floe-agent: --token: not a token\n");
                return 2;
        }
        if (load(config, identity, token, &cfg, &s) < 0)
                return 1;
        if (!s.enroll_enabled || !s.enroll_claim) {
                fprintf(stderr, "floe-agent: %s: no [enroll] claim_cert and claim_key\n", config);
                goto out;
        }
        r = agent_enroll_files_init(&files, s.cert_file, s.key_file);
        if (r < 0) {
                log_error_errno(r, "%s", s.cert_file);
                goto out;
        }
        r = agent_enroll_provider_load(s.key_provider);
        if (r < 0) {
                log_error_errno(r, "[enroll] key_provider %s", s.key_provider);
                goto out;
        }
        if (mkdir(s.state_dir, 0700) < 0 && errno != EEXIST) {
                log_error_errno(-errno, "%s", s.state_dir);
                goto out;
        }
        if (!force) {
                r = already(&s, &files);
                if (r != 0) {
                        status = r > 0 ? 0 : 1;
                        goto out;
                }
        }
        r = agent_enroll_token(&s, &tok);
        if (r < 0) {
                log_error_errno(r, "[enroll] token_file %s", s.enroll_token_file);
                goto out;
        }
        r = sd_event_new(&run.event);
        if (r < 0) {
                log_error_errno(r, "event loop");
                goto out;
        }
        o = (struct agent_enroll_client_opts){
                .s = &s,
                .identity = s.enroll_identity,
                .token = tok,
                .oneshot = true,
                .done = on_done,
                .ud = &run,
        };
        r = agent_enroll_client_new(run.event, &o, &c);
        r = r ?: agent_enroll_client_start(c);
        if (r < 0) {
                log_error_errno(r, "enroll");
                goto out;
        }
        if (!run.done)
                sd_event_loop(run.event);
        if (run.res.error == 0) {
                printf("enrolled %s: serial %s, valid until %s\n  certificate %s\n  key %s\n",
                       run.res.info.identity, run.res.info.serial,
                       utc(run.res.info.not_after, until, sizeof(until)), s.cert_file, s.key_file);
                status = 0;
        } else {
                fprintf(stderr, "floe-agent: enrollment of %s failed: %s%s%s\n", s.enroll_identity,
                        run.res.reason[0] ? run.res.reason : "error",
                        run.res.message[0] ? ": " : "", run.res.message);
        }
out:
        agent_enroll_client_free(c);
        sd_event_unref(run.event);
        agent_enroll_secret_free(tok);
        floe_config_free(cfg);
        return status;
}
