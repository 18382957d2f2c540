/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * libcerts: floe's certificate authority, used by floe-ca (the operator's CLI)
 * and floe-enrolld (the enrollment daemon). OpenSSL 3 only.
 *
 * Five CAs live in one CA directory (docs/floe-ca.md has the layout):
 *
 *   root     self-signed, offline-style, pathlen:1; signs the two intermediates
 *   device   root -> device-issuing intermediate, pathlen:0, EKU clientAuth:
 *            device certificates (CN = <tenant>.<device>, O = <tenant>)
 *   server   root -> server intermediate, pathlen:0, EKU serverAuth: broker certificates
 *   claim    self-signed, pathlen:0, EKU clientAuth: claim certificates (CN = claim-<id>)
 *   service  self-signed, pathlen:0, EKU clientAuth: service identities (floe-uploader, ...)
 *
 * Each broker listener trusts exactly one issuing CA, so a certificate of one
 * kind can never complete a TLS handshake on another kind's listener: the
 * device listener trusts root + device (the server intermediate's EKU keeps its
 * leaves from client authentication), the claim listener only the claim CA,
 * the service listener only the service CA. Devices verify brokers with root.
 *
 * Conventions (STYLE.md): functions return 0 or a negative errno, ret_*
 * out-parameters are written only on success, destructors accept NULL and
 * return NULL. Times are Unix seconds (int64_t) passed in by the caller, so
 * tests and daemons control "now". Nothing here logs above debug, and no
 * function ever prints or logs key material.
 */

/* The CAs of a CA directory. */
enum ca_role {
        CA_ROLE_ROOT,
        CA_ROLE_DEVICE,
        CA_ROLE_SERVER,
        CA_ROLE_CLAIM,
        CA_ROLE_SERVICE,
        _CA_ROLE_MAX,
        _CA_ROLE_INVALID = -EINVAL,
};

/* What a certificate is for. Leaves are issued by exactly one role. */
enum ca_kind {
        CA_KIND_DEVICE,  /* by CA_ROLE_DEVICE: clientAuth, CN = identity, O = tenant */
        CA_KIND_CLAIM,   /* by CA_ROLE_CLAIM: clientAuth, CN = claim-<id> */
        CA_KIND_SERVER,  /* by CA_ROLE_SERVER: serverAuth, CN = DNS name, SANs */
        CA_KIND_SERVICE, /* by CA_ROLE_SERVICE: clientAuth, CN = service name */
        CA_KIND_CA,      /* a CA certificate (registry bookkeeping) */
        _CA_KIND_MAX,
        _CA_KIND_INVALID = -EINVAL,
};

enum ca_key_type {
        CA_KEY_P256,
        CA_KEY_P384,
        CA_KEY_RSA3072,
        _CA_KEY_TYPE_MAX,
        _CA_KEY_TYPE_INVALID = -EINVAL,
};

/* RFC 5280 CRLReason values floe uses (the numbers are the CRL encoding). */
enum ca_reason {
        CA_REASON_UNSPECIFIED = 0,
        CA_REASON_KEY_COMPROMISE = 1,
        CA_REASON_CA_COMPROMISE = 2,
        CA_REASON_AFFILIATION_CHANGED = 3,
        CA_REASON_SUPERSEDED = 4,
        CA_REASON_CESSATION_OF_OPERATION = 5,
        CA_REASON_CERTIFICATE_HOLD = 6, /* not offered: floe never un-revokes */
        CA_REASON_PRIVILEGE_WITHDRAWN = 9,
};

/* Longest names (bytes, without NUL). */
#define CA_IDENTITY_MAX 127 /* <tenant>.<device>, 63 + 1 + 63 */
#define CA_CLAIM_ID_MAX 63  /* claim-<id> */
#define CA_SERVICE_MAX  63
#define CA_SERVER_MAX   253 /* a DNS name */
#define CA_NAME_MAX     253 /* any of the above */
#define CA_CLAIM_PREFIX "claim-"
/* Serial numbers: 128 random bits, so at most 17 DER bytes; hex is 2 per byte. */
#define CA_SERIAL_HEX_MAX 40

/* Names of enums, for files, config and messages: "root", "device", ...;
 * "device", "claim", "server", "service", "ca"; "p256", "p384", "rsa3072";
 * "keyCompromise", ... (openssl's spelling). NULL for out-of-range values. */
const char *ca_role_name(enum ca_role role);
const char *ca_kind_name(enum ca_kind kind);
const char *ca_key_type_name(enum ca_key_type type);
const char *ca_reason_name(enum ca_reason reason);
/* The inverse: the enum value, or -EINVAL. */
int ca_role_from_name(const char *s);
int ca_kind_from_name(const char *s);
int ca_key_type_from_name(const char *s);
int ca_reason_from_name(const char *s);

/* The role that issues leaves of a kind; -EINVAL for CA_KIND_CA. */
int ca_kind_issuer(enum ca_kind kind);

/*
 * Names (ca-name.c). The grammar keeps every name safe as an MQTT topic level
 * and as a mosquitto ACL %u substitution, and keeps the kinds apart:
 *   device   <tenant>.<device>, each part [a-z0-9][a-z0-9-]{0,62} (DESIGN.md)
 *   claim    claim-[a-z0-9][a-z0-9-]{0,56}: never contains '.', so never an identity
 *   service  [a-z0-9][a-z0-9-]{0,62}, not starting with "claim-"
 *   server   a lower-case DNS name (LDH labels of 1..63 bytes, 253 bytes at most)
 * So '/', '+', '#', NUL, upper case, spaces and over-long names are refused
 * everywhere. ca_name_problem() says why a name is refused (a static string),
 * or returns NULL if it is valid; ca_name_check() returns 0, -ENAMETOOLONG or
 * -EINVAL. CA_KIND_CA names are free text of 1..64 printable ASCII bytes.
 */
const char *ca_name_problem(enum ca_kind kind, const char *name);
int ca_name_check(enum ca_kind kind, const char *name);
/* The tenant part of a valid identity, copied into buf (size >= 64). */
int ca_identity_tenant(const char *identity, char *buf, size_t size);
/* "claim-<id>" from "<id>" or from "claim-<id>" itself, validated. */
int ca_claim_cn(const char *id, char *buf, size_t size);

/* A subjectAltName entry. */
enum ca_san_type {
        CA_SAN_DNS,
        CA_SAN_IP,
        CA_SAN_URI,
};

struct ca_san {
        enum ca_san_type type;
        char value[256]; /* DNS name, textual IPv4/IPv6 address or URI */
};

/*
 * "dns:broker.example.com,ip:10.0.0.1,uri:urn:x" (types case-insensitive)
 * into at most max entries. DNS names must be valid server names (a leading
 * "*." is refused), IPs parse with inet_pton, URIs are printable ASCII
 * without spaces, commas, quotes or backslashes. -EINVAL, -E2BIG (more than
 * max), -ENAMETOOLONG.
 */
int ca_san_parse(const char *spec, struct ca_san *ret, size_t max, size_t *ret_n);

/* After an OpenSSL failure: -ENOMEM if its error queue holds an allocation
 * failure, else fallback. Clears the queue. */
int ca_openssl_errno(int fallback);

/*
 * Keys (ca-key.c). Generation uses EVP_PKEY_Q_keygen; signing digests are
 * SHA-256 (P-256, RSA) and SHA-384 (P-384).
 */
int ca_key_generate(enum ca_key_type type, EVP_PKEY **ret);
/* The key's type if it is one floe issues for or accepts in CSRs (EC P-256,
 * P-384, RSA 2048..8192 bits as CA_KEY_RSA3072); -EPROTONOSUPPORT otherwise. */
int ca_key_classify(const EVP_PKEY *key, enum ca_key_type *ret);
/* Digest to sign with this key. */
const EVP_MD *ca_key_digest(const EVP_PKEY *key);
/* Lower-case hex SHA-256 of the DER SubjectPublicKeyInfo (65 bytes with NUL). */
int ca_key_fingerprint(const EVP_PKEY *key, char ret[65]);

/*
 * Writes the private key as unencrypted PKCS#8 PEM into a new file: created
 * with O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC and fchmod 0600 whatever the umask,
 * fsync'ed. -EEXIST if path exists (never overwritten). The PEM buffer is
 * cleansed. On failure the partial file is removed.
 */
int ca_key_write_new(const char *path, const EVP_PKEY *key);
/* Reads a PEM private key; refuses files that group or others may read
 * (-EPERM) unless allow_loose_mode. */
int ca_key_load(const char *path, bool allow_loose_mode, EVP_PKEY **ret);

/*
 * Files (ca-file.c).
 * ca_file_write_new: a new file (O_EXCL, mode) with data, fsync'ed; -EEXIST.
 * ca_file_replace: temp file in the same directory + fsync + rename + fsync
 * of the directory, so readers see the old or the new content, never a mix.
 * ca_pem_write_certs: PEM of n certificates into a new file (0644).
 * ca_pem_read_certs: every CERTIFICATE block of a PEM file (at least one).
 */
int ca_file_write_new(const char *path, const void *data, size_t len, mode_t mode);
int ca_file_replace(const char *path, const void *data, size_t len, mode_t mode);
/* "PATH.tmp-<12 random hex digits>": a sibling for a write + rename. */
int ca_file_temp_name(const char *path, char *buf, size_t size);
/* fsync of the directory holding path (after a rename into it). */
int ca_file_sync_dir(const char *path);
/* The whole file (at most max bytes, else -EFBIG), NUL-terminated; ret_len
 * excludes the NUL. Symlinks are not followed. */
int ca_file_read(const char *path, size_t max, char **ret, size_t *ret_len);
int ca_file_read_fd(int fd, size_t max, char **ret, size_t *ret_len);
int ca_pem_certs(X509 *const *certs, size_t n, char **ret, size_t *ret_len);
int ca_pem_crl(const X509_CRL *crl, char **ret, size_t *ret_len);
int ca_pem_write_certs(const char *path, X509 *const *certs, size_t n);
int ca_pem_read_cert(const char *path, X509 **ret);
int ca_pem_read_certs(const char *path, STACK_OF(X509) * *ret);
int ca_pem_parse_cert(const char *pem, size_t len, X509 **ret);

/*
 * Serial numbers: 128 random bits from the OpenSSL DRBG, positive, never 0.
 * ca_serial_hex: upper-case hex of the magnitude bytes, as `openssl x509
 * -serial` prints it. ca_serial_normalize: accepts that, lower case, "0x"
 * and ':' separators; writes the canonical form.
 */
int ca_serial_random(ASN1_INTEGER **ret);
int ca_serial_hex(const ASN1_INTEGER *serial, char ret[CA_SERIAL_HEX_MAX + 1]);
int ca_serial_normalize(const char *s, char ret[CA_SERIAL_HEX_MAX + 1]);
int ca_serial_from_hex(const char *hex, ASN1_INTEGER **ret);

/* An issuing CA: its certificate, private key and chain up to the root. */
struct ca_issuer {
        enum ca_role role;
        X509 *cert;
        EVP_PKEY *key;
        STACK_OF(X509) * chain; /* certificates above cert, root last; may be empty */
};

struct ca_issuer *ca_issuer_free(struct ca_issuer *is);

/* What a certificate will say. Strings are borrowed. */
struct ca_cert_req {
        enum ca_kind kind; /* CA_KIND_CA for CA certificates */
        enum ca_role role; /* CA_KIND_CA only: which CA is being made */
        const char *cn;    /* checked with ca_name_check(kind) */
        const char *org;   /* NULL: none (devices: must be the tenant, NULL = tenant) */
        const struct ca_san *san;
        size_t n_san;
        EVP_PKEY *pubkey;    /* the subject's key (only the public half is used) */
        int64_t now;         /* Unix seconds */
        uint64_t validity_s; /* notAfter = now + validity_s */
        uint64_t backdate_s; /* notBefore = now - backdate_s (clock skew) */
};

/*
 * Builds and signs a certificate. Extensions:
 *   CA:      basicConstraints critical CA:TRUE, pathlen 1 (root) or 0;
 *            keyUsage critical keyCertSign, cRLSign; SKI; AKI (keyid) unless
 *            self-signed; EKU by role (device, claim, service: clientAuth,
 *            server: serverAuth, root: none).
 *   leaves:  basicConstraints critical CA:FALSE; keyUsage critical
 *            digitalSignature (+ keyEncipherment for RSA servers); EKU by kind;
 *            SKI; AKI keyid; subjectAltName from req->san (a server's CN
 *            comes first in it, as DNS name or, for an IPv4 address, as IP).
 * issuer NULL makes a self-signed CA (req->pubkey must then be the private
 * key). Version 3, random serial. -EINVAL for bad names or combinations
 * (e.g. a device kind with a claim issuer), -ERANGE for validity beyond the
 * issuer's notAfter or the year 9999.
 */
int ca_issue(const struct ca_issuer *issuer, const struct ca_cert_req *req, X509 **ret);

/* "YYYY-MM-DDTHH:MM:SSZ" (UTC) into buf; returns buf. */
char *ca_format_time(int64_t t, char *buf, size_t size);

/* Whether the certificate's private key matches key (1), not (0). */
int ca_cert_matches_key(X509 *cert, EVP_PKEY *key);
/* notBefore/notAfter as Unix seconds. */
int ca_cert_times(const X509 *cert, int64_t *ret_not_before, int64_t *ret_not_after);
/* The (single) CN as a validated C string: refuses an embedded NUL, a non-
 * string type, several CNs, and more than size-1 bytes. */
int ca_cert_cn(const X509 *cert, char *buf, size_t size);

/* A revoked certificate for a CRL. */
struct ca_revoked {
        char serial[CA_SERIAL_HEX_MAX + 1];
        int64_t revoked_at;
        enum ca_reason reason;
};

/*
 * A version 2 CRL signed by the issuer: lastUpdate = now, nextUpdate =
 * now + next_update_s, CRL number extension, AKI keyid, each entry with its
 * reason code (none for unspecified, as RFC 5280 recommends). Entries are
 * sorted by serial.
 */
int ca_crl_build(const struct ca_issuer *issuer, const struct ca_revoked *revoked, size_t n,
                 uint64_t crl_number, int64_t now, uint64_t next_update_s, X509_CRL **ret);
