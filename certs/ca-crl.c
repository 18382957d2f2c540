/* SPDX-License-Identifier: Apache-2.0 */
/* Certificate revocation lists (RFC 5280 section 5), version 2. */
#include <errno.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca.h"

static int add_revoked(X509_CRL *crl, const struct ca_revoked *rv)
{
        ASN1_INTEGER *serial = NULL;
        ASN1_TIME *when = NULL;
        ASN1_ENUMERATED *reason = NULL;
        X509_REVOKED *entry;
        int r = -ENOMEM;

        if (!ca_reason_name(rv->reason) || rv->revoked_at < 0)
                return -EINVAL;
        r = ca_serial_from_hex(rv->serial, &serial);
        if (r < 0)
                return r;
        r = -ENOMEM;
        entry = X509_REVOKED_new();
        when = ASN1_TIME_set(NULL, (time_t)rv->revoked_at);
        if (!entry || !when || !X509_REVOKED_set_serialNumber(entry, serial) ||
            !X509_REVOKED_set_revocationDate(entry, when))
                goto out;
        /* RFC 5280 5.3.1: omit the reason code rather than say "unspecified". */
        if (rv->reason != CA_REASON_UNSPECIFIED) {
                reason = ASN1_ENUMERATED_new();
                if (!reason || !ASN1_ENUMERATED_set(reason, (long)rv->reason) ||
                    X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, reason, 0, 0) != 1)
                        goto out;
        }
        if (!X509_CRL_add0_revoked(crl, entry))
                goto out;
        entry = NULL;
        r = 0;
out:
        X509_REVOKED_free(entry);
        ASN1_ENUMERATED_free(reason);
        ASN1_TIME_free(when);
        ASN1_INTEGER_free(serial);
        return r;
}

int ca_crl_build(const struct ca_issuer *issuer, const struct ca_revoked *revoked, size_t n,
                 uint64_t crl_number, int64_t now, uint64_t next_update_s, X509_CRL **ret)
{
        ASN1_INTEGER *number = NULL;
        ASN1_TIME *last = NULL, *next = NULL;
        X509_CRL *crl = NULL;
        X509_EXTENSION *aki = NULL;
        X509V3_CTX ctx;
        int r = -ENOMEM;

        if (!issuer || !issuer->cert || !issuer->key || crl_number == 0 || now < 0 ||
            next_update_s == 0 || next_update_s > 100ULL * 365 * 86400)
                return -EINVAL;
        crl = X509_CRL_new();
        last = ASN1_TIME_set(NULL, (time_t)now);
        next = ASN1_TIME_set(NULL, (time_t)(now + (int64_t)next_update_s));
        number = ASN1_INTEGER_new();
        if (!crl || !last || !next || !number || !ASN1_INTEGER_set_uint64(number, crl_number))
                goto out;
        if (!X509_CRL_set_version(crl, X509_CRL_VERSION_2) ||
            !X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer->cert)) ||
            !X509_CRL_set1_lastUpdate(crl, last) || !X509_CRL_set1_nextUpdate(crl, next))
                goto out;
        for (size_t i = 0; i < n; i++) {
                r = add_revoked(crl, &revoked[i]);
                if (r < 0)
                        goto out;
        }
        r = -ENOMEM;
        if (X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1)
                goto out;
        X509V3_set_ctx(&ctx, issuer->cert, NULL, NULL, crl, 0);
        aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
        if (!aki || !X509_CRL_add_ext(crl, aki, -1))
                goto out;
        X509_CRL_sort(crl);
        if (X509_CRL_sign(crl, issuer->key, ca_key_digest(issuer->key)) <= 0)
                goto out;
        *ret = crl;
        crl = NULL;
        r = 0;
out:
        ERR_clear_error();
        X509_EXTENSION_free(aki);
        ASN1_INTEGER_free(number);
        ASN1_TIME_free(last);
        ASN1_TIME_free(next);
        X509_CRL_free(crl);
        return r;
}
