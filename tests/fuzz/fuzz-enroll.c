/* SPDX-License-Identifier: Apache-2.0 */
/* floe-enrolld's request decoder (certs/enroll.h) on arbitrary bytes, as JSON or CBOR:
 * never crashes, never leaks; a decoded request keeps every bound of docs/enrollment.md;
 * a refusal has a reason and a message that encode into a valid response. The CSR checks
 * run on whatever CSR was decoded, and the topic parsers on the bytes as a topic. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "enroll-service.h"
#include "floe-alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_topics(const uint8_t *data, size_t size)
{
        char topic[ENROLL_TOPIC_MAX + 1], id[CA_NAME_MAX + 1];
        enum enroll_kind kind;
        size_t n = size < ENROLL_TOPIC_MAX ? size : ENROLL_TOPIC_MAX;

        memcpy(topic, data, n);
        topic[n] = '\0';
        if (enroll_topic_parse(topic, &kind, id, sizeof(id)) == 0) {
                if (ca_name_check(kind == ENROLL_KIND_CLAIM ? CA_KIND_CLAIM : CA_KIND_DEVICE, id))
                        abort();
                if (enroll_response_topic_valid(id, topic, strlen(topic)))
                        abort(); /* a request topic is never a response topic */
        }
        (void)enroll_response_topic_valid("claim-fuzz", (const char *)data, size);
}

static void check_response(enum enroll_format f, const struct enroll_error *e)
{
        struct enroll_response resp = {.reason = e->reason, .message = e->message};
        char *buf = NULL;
        size_t len = 0;

        if (!enroll_reason_name(e->reason) || e->reason == ENROLL_OK ||
            strnlen(e->message, sizeof(e->message)) == sizeof(e->message))
                abort();
        if (enroll_response_encode(f, &resp, &buf, &len) < 0)
                abort();
        if (f == ENROLL_FORMAT_JSON) {
                json_t *o = json_loadb(buf, len, 0, NULL);

                if (!o)
                        abort(); /* the message may hold any byte: still valid JSON */
                json_decref(o);
        }
        floe_free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct enroll_request r = {0};
        struct enroll_error e = {0};
        EVP_PKEY *key = NULL;
        int rc;

        check_topics(data, size);
        rc = enroll_request_decode(data, size, ENROLL_PAYLOAD_MAX, &r, &e);
        if (rc == -ENOMEM)
                return 0;
        if (rc < 0) {
                if (rc != -EBADMSG && rc != -EMSGSIZE)
                        abort();
                check_response(ENROLL_FORMAT_JSON, &e);
                check_response(ENROLL_FORMAT_CBOR, &e);
                return 0;
        }
        if (!r.csr || r.csr_len == 0 || r.csr_len > CA_CSR_MAX || r.csr[r.csr_len] != '\0' ||
            strlen(r.identity) > CA_IDENTITY_MAX || strlen(r.token) > ENROLL_TOKEN_MAX ||
            (!r.csr_der && strlen(r.csr) != r.csr_len))
                abort();
        if (r.identity[0] && enroll_identity_check(r.identity, &e) < 0)
                check_response(r.format, &e);
        if (enroll_csr_check(&r, 2048, &key, &e) == 0)
                EVP_PKEY_free(key);
        else if (e.reason != ENROLL_OK)
                check_response(r.format, &e);
        enroll_request_clear(&r);
        return 0;
}
