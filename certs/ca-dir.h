/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ca.h"
#include "floe-config.h"
#include "registry.h"

/*
 * A CA directory (docs/floe-ca.md, "Directory layout"):
 *
 *   DIR/floe-ca.conf          settings (ca_settings), written by init
 *   DIR/registry.db           the registry (registry.h), SQLite, unless the
 *                             settings' [registry] location names another
 *   DIR/<role>/ca.pem         CA certificate, role = root device server claim service
 *   DIR/<role>/ca.key         its private key, 0600 (move root/ca.key offline)
 *   DIR/<role>/trust.pem      what a verifier needs for this CA's leaves: the CA and
 *                             its issuers up to the self-signed one
 *   DIR/<role>/crl.pem        the CA's current CRL, followed by the CRL of each live
 *                             earlier generation (device and server CAs after rotate)
 *   DIR/<role>/gen-N/         an earlier generation N of an intermediate: ca.pem,
 *                             ca.key (0600), trust.pem, crl.pem (ca_dir_rotate)
 *   DIR/issued/NAME.key       keys made by issue-* (0600), NAME.pem (leaf),
 *                             NAME.chain.pem (leaf + intermediates: what a client sends)
 *
 * Both floe-ca and floe-enrolld open the directory with ca_dir_open(); the
 * enrollment daemon needs only the device CA's files and the registry.
 */

/* The longest [registry] location (bytes). */
#define CA_REGISTRY_LOCATION_MAX 1023

struct ca_settings {
        enum ca_key_type key_type; /* CA keys and keys made by issue-* */
        char organization[65];     /* O of CA subjects, and their CN prefix */
        uint64_t backdate_s;       /* notBefore = now - backdate */
        uint64_t root_validity_s;  /* root, claim and service CAs */
        uint64_t intermediate_validity_s;
        uint64_t validity_s[_CA_KIND_MAX]; /* leaves by kind; CA_KIND_CA unused */
        uint64_t token_validity_s;         /* one-time enrollment tokens */
        uint64_t crl_next_update_s;
        char registry[CA_REGISTRY_LOCATION_MAX + 1]; /* "": DIR/registry.db */
};

#define CA_SETTINGS_FILE "floe-ca.conf"
#define CA_REGISTRY_FILE "registry.db"
#define CA_ISSUED_DIR    "issued"

void ca_settings_default(struct ca_settings *s);
/* Applies the keys of cfg over *s (unknown keys are errors, with file:line). */
int ca_settings_apply(const struct floe_config *cfg, struct ca_settings *s,
                      struct floe_config_error *err);
/* The settings as an INI text that ca_settings_apply reads back. */
int ca_settings_format(const struct ca_settings *s, char **ret);

/*
 * A registry location as [registry] location and `init --registry` take it:
 * a SQLite file path (relative to the CA directory unless absolute),
 * "sqlite:PATH" (the same), or a PostgreSQL location for registry_open()
 * ("postgresql://...", "postgres://...", or "postgresql:"/"postgres:"
 * followed by libpq key=value words). Why s is refused (a static string), or
 * NULL: empty, too long, leading or trailing blanks, a leading '"', control
 * characters, or another "scheme:" prefix.
 */
const char *ca_registry_location_problem(const char *s);
/* What registry_open() gets for a CA directory at dir: setting "" is
 * dir/registry.db, a relative SQLite path is taken relative to dir. *ret_file
 * is true for SQLite (the resolved path is then a file name). */
int ca_registry_location(const char *dir, const char *setting, char *buf, size_t size,
                         bool *ret_file);

struct ca_dir;

/*
 * Creates a CA directory: five CA keys and certificates, the registry (the
 * CA certificates recorded as kind "ca"), an initial CRL per CA and the
 * settings file. Built in a temporary sibling directory and renamed into
 * place, so a failure leaves nothing behind (but the schema in a registry
 * outside the directory). -EEXIST if dir exists and is not empty: an existing
 * CA is never overwritten; -ENOTEMPTY if the registry at s->registry holds
 * certificates already.
 */
int ca_dir_init(const char *dir, const struct ca_settings *s, int64_t now);

/* Opens an existing CA directory: settings (DIR/floe-ca.conf, or
 * config_path if not NULL) and the registry at their [registry] location.
 * -ENOENT if dir is not a CA directory (or a SQLite registry it names does
 * not exist: err then names the setting); err says which setting is wrong;
 * registry_open()'s errors (-EPROTONOSUPPORT: no backend for the location,
 * -EPROTO: a newer schema). */
int ca_dir_open(const char *dir, const char *config_path, struct ca_dir **ret,
                struct floe_config_error *err);
struct ca_dir *ca_dir_close(struct ca_dir *d);

struct registry *ca_dir_registry(struct ca_dir *d);
const struct ca_settings *ca_dir_settings(const struct ca_dir *d);
const char *ca_dir_path(const struct ca_dir *d);
/* DIR/<role>/<file>. */
int ca_dir_role_file(const struct ca_dir *d, enum ca_role role, const char *file, char *buf,
                     size_t size);
/* Loads a CA's certificate, key and chain. -ENOENT if its key is absent
 * (e.g. the root key kept offline). */
int ca_dir_issuer(struct ca_dir *d, enum ca_role role, struct ca_issuer **ret);

/* Called inside the issuing transaction (e.g. to record a claim's
 * entitlements with its certificate); a negative return undoes the issue. */
typedef int (*ca_issue_hook)(struct registry *reg, X509 *cert, void *userdata);

struct ca_issue_opts {
        enum ca_kind kind; /* DEVICE, CLAIM, SERVER or SERVICE */
        const char *name;  /* the CN, checked by kind */
        const char *org;   /* NULL: settings' organization; devices: the tenant */
        const struct ca_san *san;
        size_t n_san;
        uint64_t validity_s;   /* 0: the settings' default for the kind */
        const char *csr_path;  /* NULL: make a key; else sign this CSR's key */
        const char *out_dir;   /* NULL: DIR/issued */
        const char *file_stem; /* NULL: name; files are STEM.key, STEM.pem, ... */
        int64_t now;
        ca_issue_hook hook;
        void *userdata;
};

struct ca_issued {
        char serial[CA_SERIAL_HEX_MAX + 1];
        int64_t not_before, not_after;
        char key_path[4096]; /* "" when signing a CSR */
        char cert_path[4096];
        char chain_path[4096];
};

/*
 * Issues a leaf. The key file (O_EXCL, 0600: never overwritten), NAME.pem and
 * NAME.chain.pem are written inside the registry transaction that records the
 * certificate (with the hook) and removed again if it does not commit: the
 * files exist exactly when the certificate is recorded. -EEXIST if any output
 * file exists.
 */
int ca_dir_issue(struct ca_dir *d, const struct ca_issue_opts *o, struct ca_issued *ret);

/*
 * Writes a new CRL for a CA: every revoked, unexpired certificate it issued,
 * the next CRL number, nextUpdate = now + next_update_s (0: settings); and
 * one for each live earlier generation (below), with its own number, into
 * DIR/<role>/gen-N/crl.pem. Replaces DIR/<role>/crl.pem atomically with the
 * current CRL followed by those of the earlier generations (a verifier's
 * CRL file: mosquitto's crlfile loads them all), and writes
 * OUT/<role>.crl.pem too when copy_dir is not NULL. ret_number: the current
 * CRL's number. -ENOENT if the CA's key is absent; -ENOKEY if a live earlier
 * generation's is: its last CRL (gen-N/crl.pem) goes into the file as it is
 * and the others are renewed all the same.
 */
int ca_dir_write_crl(struct ca_dir *d, enum ca_role role, int64_t now, uint64_t next_update_s,
                     const char *copy_dir, uint64_t *ret_number);

/* ca_dir_write_crl, and ret_generations (may be NULL): how many CRLs were
 * written, the current generation's and those of live earlier generations. */
int ca_dir_write_crls(struct ca_dir *d, enum ca_role role, int64_t now, uint64_t next_update_s,
                      const char *copy_dir, uint64_t *ret_number, size_t *ret_generations);

/*
 * Generations of an intermediate (device and server CAs). `rotate` replaces
 * DIR/<role>/{ca.pem,ca.key,trust.pem} with a new CA signed by the root and
 * keeps the one it replaces as DIR/<role>/gen-N/ (N = its generation: 1 is
 * the CA init made, whose CN is "<org> <role> CA"; generation N > 1 is
 * "<org> <role> CA N", so no two generations share a subject name, which
 * verifiers use to find a CRL). An earlier generation is live while its
 * certificate is unexpired and unrevoked and the registry holds an unexpired
 * certificate it issued: until then its CRL is renewed with the current one
 * (ca_dir_write_crl) and verifiers trust it (ca_dir_trust_bundle).
 */
#define CA_GENERATIONS_MAX 64

struct ca_rotated {
        unsigned generation; /* of the new CA */
        unsigned previous;   /* the generation kept in DIR/<role>/gen-N */
        char serial[CA_SERIAL_HEX_MAX + 1];
        char cn[80];
        int64_t not_after;
        size_t live; /* earlier generations still live, the previous one included */
};

/*
 * Rotates an intermediate: a new key of key_type, a certificate from the root
 * (intermediate validity, capped at the root's notAfter), recorded in the
 * registry; the previous generation kept (copied with its 0600 key before
 * anything is replaced), the files replaced atomically one by one, and new
 * CRLs written. On failure the previous files are put back. -EINVAL for
 * roles other than device and server; -ENOENT if the root key is not in the
 * directory (kept offline); -ENOKEY if the current CA's key is missing;
 * -E2BIG after CA_GENERATIONS_MAX generations; -ERANGE if the root expires.
 */
int ca_dir_rotate(struct ca_dir *d, enum ca_role role, enum ca_key_type key_type, int64_t now,
                  struct ca_rotated *ret);

/*
 * What a verifier of a role's leaves trusts, as PEM: DIR/<role>/trust.pem
 * (the current CA up to the self-signed one), then every live earlier
 * generation. The broker's cafile of a listener.
 */
int ca_dir_trust_bundle(struct ca_dir *d, enum ca_role role, int64_t now, char **ret,
                        size_t *ret_len);

/* Revokes one certificate (registry_revoke_serial), refusing self-signed CA
 * certificates (-EINVAL): no CRL they sign could revoke them. */
int ca_dir_revoke_serial(struct ca_dir *d, const char *serial, enum ca_reason reason, int64_t now);

/* The largest CSR accepted (bytes of PEM). */
#define CA_CSR_MAX (64 * 1024)

/*
 * Verifies a PEM CSR (its self-signature: proof of possession; an accepted key
 * type, see ca_key_classify) and returns its public key. The CSR's subject,
 * attributes and extensions are ignored: certificates are built from the
 * registry, never from what a CSR asks for. -EBADMSG (not a CSR, or the
 * signature does not verify), -EPROTONOSUPPORT (key type), -EINVAL (empty or
 * larger than CA_CSR_MAX). ca_csr_load_key reads it from a file.
 */
int ca_csr_key(const char *pem, size_t len, EVP_PKEY **ret);
int ca_csr_load_key(const char *path, EVP_PKEY **ret);

/*
 * Claims (ca-claim.c): a claim certificate (CN claim-<id>, claim CA) and, in
 * the same registry transaction, the claim, its allowlist entries and its
 * one-time tokens. A claim stops entitling anything when its certificate
 * expires or is revoked.
 */
struct ca_claim_opts {
        const char *id;           /* "<id>" or "claim-<id>" */
        const char *tenant;       /* NULL or "": identities of any tenant */
        const char *const *allow; /* identities the claim may enroll */
        size_t n_allow;
        bool reusable;                 /* allowlist entries usable more than once */
        size_t n_tokens;               /* tokens for any identity of the tenant */
        const char *const *tokens_for; /* one token bound to each of these identities */
        size_t n_tokens_for;
        uint64_t token_validity_s; /* 0: settings; capped at the claim's expiry */
        uint64_t validity_s;       /* 0: settings */
        const char *csr_path;      /* NULL: make the claim key */
        const char *out_dir;       /* NULL: DIR/issued */
        int64_t now;
};

struct ca_claim_token {
        char token[REGISTRY_TOKEN_LEN + 1];
        char identity[CA_IDENTITY_MAX + 1]; /* "" : any identity of the tenant */
};

/* Issues the claim. The tokens (shown once, never stored in clear) are
 * returned in *ret_tokens; free them with ca_claim_tokens_free(), which
 * cleanses them. -EINVAL with a bad id, tenant, identity (outside the
 * tenant) or tokens without a tenant. */
int ca_dir_issue_claim(struct ca_dir *d, const struct ca_claim_opts *o, struct ca_issued *ret,
                       struct ca_claim_token **ret_tokens, size_t *ret_n_tokens);
struct ca_claim_token *ca_claim_tokens_free(struct ca_claim_token *tokens, size_t n);
/* Why the options are refused (a static string), or NULL. */
const char *ca_claim_opts_problem(const struct ca_claim_opts *o);

/* The tokens as text, one per line: "<token> <identity>", or "<token>
 * <tenant>.*" for a token valid for any identity of the tenant. */
int ca_claim_tokens_format(const struct ca_claim_token *t, size_t n, const char *tenant, char **ret,
                           size_t *ret_len);

/* A list of names from "a,b,c" arguments and from files with one name per
 * line (blank lines and lines starting with '#' skipped). At most 100000. */
struct ca_names {
        char **v;
        size_t n, cap;
};

void ca_names_clear(struct ca_names *l);
int ca_names_add_csv(struct ca_names *l, const char *csv);
int ca_names_add_file(struct ca_names *l, const char *path);
