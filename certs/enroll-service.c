/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment service: entitlement, rate limits, signing, idempotent retries. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "enroll-service.h"
#include "floe-alloc.h"

struct enroll_service {
        struct ca_dir *dir;
        struct ca_issuer *issuer;
        char *chain_pem; /* the issuing CA and intermediates above it, not the root */
        int64_t issuer_not_after;
        struct enroll_policy policy;
        bool in_batch; /* a registry transaction is open */
        bool broken;   /* a savepoint failed: the batch can only be rolled back */
};

void enroll_policy_default(struct enroll_policy *p)
{
        *p = (struct enroll_policy){
                .validity_s = 0,
                .rate_window_s = 3600,
                .claim_rate_limit = 20,
                .renew_rate_limit = 10,
                .renew_replay_s = 600,
                .rsa_min_bits = 3072,
                .max_payload = 16 * 1024,
        };
}

/* -- the device CA ------------------------------------------------------------------------ */

static int chain_pem(const struct ca_issuer *is, char **ret)
{
        X509 *certs[8];
        size_t n = 0, len = 0;

        certs[n++] = is->cert;
        for (int i = 0; is->chain && i < sk_X509_num(is->chain) && n < ELEMENTSOF(certs); i++) {
                X509 *c = sk_X509_value(is->chain, i);

                /* the root is the device's pinned anchor: it is not sent */
                if (X509_check_issued(c, c) != X509_V_OK)
                        certs[n++] = c;
        }
        return ca_pem_certs(certs, n, ret, &len);
}

static int load_issuer(struct enroll_service *s)
{
        struct ca_issuer *is = NULL;
        char *pem = NULL;
        int64_t nb, na;
        int r;

        r = ca_dir_issuer(s->dir, CA_ROLE_DEVICE, &is);
        if (r >= 0)
                r = chain_pem(is, &pem);
        if (r >= 0)
                r = ca_cert_times(is->cert, &nb, &na);
        if (r < 0) {
                ca_issuer_free(is);
                floe_free(pem);
                return r;
        }
        ca_issuer_free(s->issuer);
        floe_free(s->chain_pem);
        s->issuer = is;
        s->chain_pem = pem;
        s->issuer_not_after = na;
        return 0;
}

int enroll_service_new(const char *ca_dir, const char *ca_config, const struct enroll_policy *p,
                       struct enroll_service **ret, struct floe_config_error *err)
{
        struct enroll_service *s;
        int r;

        s = floe_calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->policy = *p;
        r = ca_dir_open(ca_dir, ca_config, &s->dir, err);
        if (r >= 0)
                r = load_issuer(s);
        if (r < 0) {
                enroll_service_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

struct enroll_service *enroll_service_free(struct enroll_service *s)
{
        if (!s)
                return NULL;
        enroll_service_abort(s);
        ca_issuer_free(s->issuer);
        floe_free(s->chain_pem);
        ca_dir_close(s->dir);
        floe_free(s);
        return NULL;
}

void enroll_service_set_policy(struct enroll_service *s, const struct enroll_policy *p)
{
        s->policy = *p;
}

int enroll_service_reload_issuer(struct enroll_service *s)
{
        return load_issuer(s);
}

int64_t enroll_service_issuer_not_after(const struct enroll_service *s)
{
        return s->issuer_not_after;
}

struct registry *enroll_service_registry(struct enroll_service *s)
{
        return ca_dir_registry(s->dir);
}

void enroll_result_clear(struct enroll_result *r)
{
        if (!r)
                return;
        floe_free(r->certificate);
        *r = (struct enroll_result){0};
}

/* -- deciding ------------------------------------------------------------------------------ */

/* A registry or library failure: reason internal, errno kept for the log. */
static int internal(struct enroll_result *res, int error, const char *what)
{
        res->error = error;
        return enroll_fail(&res->err, ENROLL_INTERNAL, "%s failed; try again later", what);
}

static int entitlement_refusal(struct enroll_result *res, int r, bool token)
{
        struct enroll_error *e = &res->err;

        switch (r) {
        case -ENOENT:
        case -EINVAL:
                return enroll_fail(e, ENROLL_NOT_ENTITLED, "%s",
                                   token ? "unknown token" : "not entitled");
        case -EPERM:
                return enroll_fail(e, ENROLL_NOT_ENTITLED,
                                   token ? "the token does not entitle this identity"
                                         : "the claim is not entitled to this identity");
        case -EALREADY:
                return token ? enroll_fail(e, ENROLL_TOKEN_USED, "the token was already used")
                             : enroll_fail(e, ENROLL_ALREADY_ENROLLED,
                                           "this identity was already enrolled with another key");
        case -EKEYREVOKED:
                return enroll_fail(e, ENROLL_CLAIM_REVOKED, "the claim certificate was revoked");
        case -EKEYEXPIRED:
                return token ? enroll_fail(e, ENROLL_TOKEN_EXPIRED,
                                           "the token or the claim has expired")
                             : enroll_fail(e, ENROLL_CLAIM_EXPIRED, "the claim has expired");
        default:
                return internal(res, r, "the entitlement check");
        }
}

struct valid_count {
        int64_t now;
        size_t n;
};

static int count_valid(const struct registry_cert *c, void *userdata)
{
        struct valid_count *v = userdata;

        if (registry_cert_status(c, v->now) == REGISTRY_VALID)
                v->n++;
        return 0;
}

/* A renewal needs a valid (unrevoked, unexpired) device certificate of the
 * identity: the broker checked the one presented, but a revoked device may
 * still hold a session that began before the CRL reached the broker. */
static int renewal_entitled(struct enroll_service *s, const char *identity, int64_t now,
                            struct enroll_result *res)
{
        struct registry_filter f = REGISTRY_FILTER_ALL;
        struct valid_count v = {.now = now};
        int r;

        f.identity = identity;
        f.kind = CA_KIND_DEVICE;
        r = registry_cert_foreach(ca_dir_registry(s->dir), &f, count_valid, &v);
        if (r < 0)
                return internal(res, r, "the registry lookup");
        if (v.n == 0)
                return enroll_fail(&res->err, ENROLL_NOT_ENTITLED,
                                   "%s has no valid certificate to renew: enroll with a claim",
                                   identity);
        return 0;
}

static int take_cert(struct enroll_result *res, struct registry_cert *c, bool replay)
{
        memcpy(res->serial, c->serial, sizeof(res->serial));
        res->not_before = c->not_before;
        res->not_after = c->not_after;
        res->certificate = TAKE_PTR(c->pem);
        res->replay = replay;
        return 0;
}

static int sign(struct enroll_service *s, EVP_PKEY *key, int64_t now, struct enroll_result *res)
{
        const struct ca_settings *cs = ca_dir_settings(s->dir);
        uint64_t validity =
                s->policy.validity_s ? s->policy.validity_s : cs->validity_s[CA_KIND_DEVICE];
        struct registry_cert rc = {0};
        struct ca_san san = {.type = CA_SAN_URI};
        struct ca_cert_req req;
        X509 *x = NULL;
        int r;

        /* never beyond the device CA: shorten rather than fail near its end */
        if (now >= s->issuer_not_after)
                return internal(res, -EKEYEXPIRED, "signing (the device CA has expired)");
        if (validity > (uint64_t)(s->issuer_not_after - now))
                validity = (uint64_t)(s->issuer_not_after - now);
        snprintf(san.value, sizeof(san.value), "urn:floe:device:%s", res->identity);
        req = (struct ca_cert_req){
                .kind = CA_KIND_DEVICE,
                .cn = res->identity,
                .san = &san,
                .n_san = 1,
                .pubkey = key,
                .now = now,
                .validity_s = validity,
                .backdate_s = cs->backdate_s,
        };
        r = ca_issue(s->issuer, &req, &x);
        if (r >= 0)
                r = registry_cert_from_x509(x, CA_KIND_DEVICE, CA_ROLE_DEVICE, now, &rc);
        if (r >= 0)
                r = registry_cert_add(ca_dir_registry(s->dir), &rc);
        X509_free(x);
        if (r < 0) {
                registry_cert_clear(&rc);
                return internal(res, r, "signing");
        }
        take_cert(res, &rc, false);
        registry_cert_clear(&rc);
        return 0;
}

/* The certificate an earlier identical request got, if still valid. */
static int find_replay(struct enroll_service *s, const char *fp, int64_t now, int64_t since,
                       struct enroll_result *res)
{
        struct registry_cert c = {0};
        int r;

        r = registry_cert_find_by_key(ca_dir_registry(s->dir), res->identity, fp, now, &c);
        if (r >= 0 && c.issued_at < since)
                r = -ENOENT;
        if (r >= 0)
                take_cert(res, &c, true);
        registry_cert_clear(&c);
        return r;
}

static int decide_claim(struct enroll_service *s, const char *claim,
                        const struct enroll_request *req, EVP_PKEY *key, const char *fp,
                        int64_t now, struct enroll_result *res)
{
        struct registry *reg = ca_dir_registry(s->dir);
        bool replay = false;
        int r;

        res->token = req->token[0] != '\0';
        if (res->token)
                r = registry_token_burn(reg, claim, req->token, res->identity, fp, now, &replay);
        else
                r = registry_entitlement_use(reg, claim, res->identity, fp, now, &replay);
        if (r < 0)
                return entitlement_refusal(res, r, res->token);
        if (replay) {
                r = find_replay(s, fp, now, INT64_MIN, res);
                if (r == -ENOENT)
                        return res->token ? enroll_fail(&res->err, ENROLL_TOKEN_USED,
                                                        "the certificate this token gave is no "
                                                        "longer valid")
                                          : enroll_fail(&res->err, ENROLL_ALREADY_ENROLLED,
                                                        "the certificate of this enrollment is "
                                                        "no longer valid");
                if (r < 0)
                        return internal(res, r, "the registry lookup");
                return 0;
        }
        return sign(s, key, now, res);
}

static int decide_renewal(struct enroll_service *s, EVP_PKEY *key, const char *fp, int64_t now,
                          struct enroll_result *res)
{
        int r;

        r = renewal_entitled(s, res->identity, now, res);
        if (r < 0)
                return r;
        r = find_replay(s, fp, now, now - (int64_t)s->policy.renew_replay_s, res);
        if (r != -ENOENT)
                return r < 0 ? internal(res, r, "the registry lookup") : 0;
        return sign(s, key, now, res);
}

/* Everything after the rate limit, inside the transaction. */
static int decide(struct enroll_service *s, enum enroll_kind kind, const char *id,
                  const void *payload, size_t len, int64_t now, struct enroll_result *res)
{
        struct enroll_request req = {0};
        EVP_PKEY *key = NULL;
        char fp[65];
        int r;

        r = enroll_request_decode(payload, len, s->policy.max_payload, &req, &res->err);
        if (r == -ENOMEM)
                return internal(res, r, "decoding");
        if (r < 0)
                return r;
        res->format = req.format;
        if (kind == ENROLL_KIND_RENEW) {
                if (req.identity[0] && strcmp(req.identity, id) != 0)
                        r = enroll_fail(&res->err, ENROLL_BAD_IDENTITY,
                                        "a renewal is for the connected identity %s only", id);
                else
                        snprintf(res->identity, sizeof(res->identity), "%s", id);
        } else if (!req.identity[0]) {
                r = enroll_fail(&res->err, ENROLL_BAD_REQUEST, "missing key \"identity\"");
        } else {
                r = enroll_identity_check(req.identity, &res->err);
                if (r >= 0)
                        memcpy(res->identity, req.identity, sizeof(res->identity));
        }
        if (r >= 0) {
                r = enroll_csr_check(&req, s->policy.rsa_min_bits, &key, &res->err);
                if (r == -ENOMEM)
                        r = internal(res, r, "the CSR check");
        }
        if (r >= 0) {
                r = ca_key_fingerprint(key, fp);
                if (r < 0)
                        r = internal(res, r, "the key fingerprint");
        }
        if (r >= 0)
                r = kind == ENROLL_KIND_CLAIM ? decide_claim(s, id, &req, key, fp, now, res)
                                              : decide_renewal(s, key, fp, now, res);
        EVP_PKEY_free(key);
        enroll_request_clear(&req);
        return r;
}

int enroll_service_begin(struct enroll_service *s)
{
        int r;

        if (s->in_batch)
                return -EALREADY;
        r = registry_begin(ca_dir_registry(s->dir));
        s->in_batch = r >= 0;
        s->broken = false;
        return r;
}

void enroll_service_abort(struct enroll_service *s)
{
        if (!s->in_batch)
                return;
        registry_rollback(ca_dir_registry(s->dir));
        s->in_batch = false;
}

int enroll_service_commit(struct enroll_service *s)
{
        int r;

        if (!s->in_batch)
                return -ENOTCONN;
        if (s->broken) {
                enroll_service_abort(s);
                return -EIO;
        }
        s->in_batch = false;
        r = registry_commit(ca_dir_registry(s->dir));
        return r;
}

void enroll_result_set_internal(struct enroll_result *r, int error)
{
        floe_free(r->certificate);
        r->certificate = NULL;
        r->replay = false;
        internal(r, error, "recording in the registry");
}

static bool id_valid(enum enroll_kind kind, const char *id)
{
        return (kind == ENROLL_KIND_CLAIM ? ca_name_check(CA_KIND_CLAIM, id)
                                          : ca_name_check(CA_KIND_DEVICE, id)) == 0;
}

int enroll_service_decide(struct enroll_service *s, enum enroll_kind kind, const char *id,
                          const void *payload, size_t len, int64_t now, struct enroll_result *ret)
{
        struct registry *reg = ca_dir_registry(s->dir);
        struct enroll_result res = {.format = ENROLL_FORMAT_JSON};
        uint64_t window = s->policy.rate_window_s ? s->policy.rate_window_s : 1;
        uint64_t limit =
                kind == ENROLL_KIND_CLAIM ? s->policy.claim_rate_limit : s->policy.renew_rate_limit;
        const uint8_t *p = payload;
        int r;

        if (!id_valid(kind, id) || now < 0)
                return -EINVAL;
        /* answer in the request's format even when it cannot be decoded */
        if (len > 0 && p[0] >> 5 == 5)
                res.format = ENROLL_FORMAT_CBOR;
        r = !s->in_batch ? -ENOTCONN : s->broken ? -EIO : registry_savepoint(reg);
        if (r < 0) {
                internal(&res, r, "the registry");
                *ret = res;
                return 0;
        }
        /* Every request counts, even one that is refused later. */
        r = registry_rate_hit(reg, id, now, window, limit, NULL);
        if (r == -EDQUOT) {
                res.retry_after_s = window - (uint64_t)now % window;
                enroll_fail(&res.err, ENROLL_RATE_LIMITED,
                            "more than %llu requests in %llu s; retry after %llu s",
                            (unsigned long long)limit, (unsigned long long)window,
                            (unsigned long long)res.retry_after_s);
        } else if (r < 0) {
                internal(&res, r, "the rate limit");
        } else {
                decide(s, kind, id, payload, len, now, &res);
        }
        /* Refusals stay (the rate count); internal failures undo this request only. */
        if (res.err.reason == ENROLL_INTERNAL)
                r = registry_savepoint_rollback(reg);
        else
                r = registry_savepoint_release(reg);
        if (r < 0) {
                s->broken = true; /* the transaction cannot be trusted any more */
                if (res.err.reason != ENROLL_INTERNAL)
                        enroll_result_set_internal(&res, r);
        }
        *ret = res;
        return 0;
}

int enroll_service_handle(struct enroll_service *s, enum enroll_kind kind, const char *id,
                          const void *payload, size_t len, int64_t now, struct enroll_result *ret)
{
        struct enroll_result res = {0};
        int r;

        if (!id_valid(kind, id) || now < 0)
                return -EINVAL;
        r = enroll_service_begin(s);
        if (r < 0) {
                res.format = len > 0 && ((const uint8_t *)payload)[0] >> 5 == 5
                                     ? ENROLL_FORMAT_CBOR
                                     : ENROLL_FORMAT_JSON;
                internal(&res, r, "the registry");
                *ret = res;
                return 0;
        }
        enroll_service_decide(s, kind, id, payload, len, now, &res);
        r = enroll_service_commit(s);
        if (r < 0 && res.err.reason != ENROLL_INTERNAL)
                enroll_result_set_internal(&res, r);
        *ret = res;
        return 0;
}

int enroll_service_respond(const struct enroll_service *s, const struct enroll_result *r,
                           char **ret, size_t *ret_len)
{
        struct enroll_response resp = {
                .reason = r->err.reason,
                .message = r->err.message,
                .retry_after_s = r->retry_after_s,
        };

        if (r->err.reason == ENROLL_OK) {
                resp.identity = r->identity;
                resp.serial = r->serial;
                resp.not_before = r->not_before;
                resp.not_after = r->not_after;
                resp.certificate = r->certificate;
                resp.chain = s->chain_pem;
                resp.replay = r->replay;
        }
        return enroll_response_encode(r->format, &resp, ret, ret_len);
}
