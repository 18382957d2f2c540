/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The pure parts of the S3 backend (s3-util.c, s3-xml.c): URL and key encoding for
 * SigV4's canonical request, query strings, S3 URLs and bucket names, the XML S3
 * answers with, ~/.aws/credentials files, and the retry schedule. No I/O; unit tests
 * and the fuzz harness link them directly.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * AWS's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ (and '/' when keep_slash) as %XX
 * with upper-case hex. The result (NUL-terminated) into out; -ENOBUFS if size is too small.
 */
int s3_uri_encode(const char *s, size_t len, bool keep_slash, char *out, size_t size);

/* One query parameter; value NULL or "" is written as "name=" (SigV4 wants the '='). */
struct s3_param {
        const char *name;
        const char *value;
};

/* The canonical query string: each name and value UriEncoded, sorted by encoded name (then
 * value), joined by '&'. At most 16 parameters. -ENOBUFS, -E2BIG. */
int s3_query_format(const struct s3_param *params, size_t n, char *out, size_t size);

/* "bucket[/prefix]" of an s3:// URL: the bucket (AWS naming rules: 3-63 of a-z 0-9 . -,
 * starting and ending with a letter or digit, not an IPv4 address) and the prefix without
 * leading or trailing '/'. -EINVAL. */
int s3_parse_url(const char *rest, char *bucket, size_t bucket_size, char *prefix,
                 size_t prefix_size);
bool s3_bucket_valid(const char *bucket);

/* "2024-01-31T12:34:56.789Z" (ISO 8601, UTC) as Unix milliseconds. -EINVAL. */
int s3_parse_time(const char *s, int64_t *ret_ms);

/*
 * XML, minimally and safely: elements, attributes (skipped), character data with the five
 * predefined entities and &#N; / &#xH; references (UTF-8), comments, the <?xml ...?>
 * declaration. No DOCTYPE, no CDATA (S3 sends neither): -EBADMSG. Nesting at most
 * S3_XML_DEPTH, each text at most S3_XML_TEXT bytes once decoded.
 *
 * fn gets every element at its end tag, with the path of element names from the root
 * (path[0] is the root, path[depth - 1] the element itself): an element without child
 * elements with its decoded text (NUL-terminated), one with children with text NULL. fn
 * returns 0 to go on, anything else stops the walk and is returned. The document must be
 * complete and well nested: -EBADMSG otherwise.
 */
#define S3_XML_DEPTH 16
#define S3_XML_TEXT  4096
typedef int (*s3_xml_fn)(void *ud, const char *const *path, size_t depth, const char *text,
                         size_t len);
int s3_xml_walk(const char *xml, size_t len, s3_xml_fn fn, void *ud);

/* The root element's name (into out). -EBADMSG. */
int s3_xml_root(const char *xml, size_t len, char *out, size_t size);

/* The text of the element at path "Root/Child/..." (first match) into out. -ENOENT if absent,
 * -ENOBUFS if longer than size - 1, -EBADMSG. */
int s3_xml_find(const char *xml, size_t len, const char *path, char *out, size_t size);

/*
 * One page of a ListObjectsV2 answer (<ListBucketResult>): fn once per <Contents> with its
 * <Key>, <Size> and <LastModified>, in document order; *ret_truncated from <IsTruncated>,
 * ret_token (size bytes) gets <NextContinuationToken> ("" if none). A <Contents> without a
 * key or with a bad size or time: -EBADMSG. A truncated page without a token: -EBADMSG.
 */
typedef int (*s3_list_fn)(void *ud, const char *key, uint64_t size, int64_t mtime_ms);
int s3_list_parse(const char *xml, size_t len, s3_list_fn fn, void *ud, bool *ret_truncated,
                  char *ret_token, size_t token_size);

/* <Error><Code> of an error answer into code ("" if there is none or it is not XML). */
void s3_error_code(const char *xml, size_t len, char *code, size_t size);

/*
 * A profile of an ~/.aws/credentials (or config) file: aws_access_key_id,
 * aws_secret_access_key and aws_session_token of section [profile] or [profile NAME].
 * Values are trimmed; '#' and ';' start comment lines. -ENOENT if the profile or its key id
 * or secret is missing, -ENOBUFS if a value does not fit (each buffer 256 bytes).
 */
struct s3_creds {
        char key_id[256];
        char secret[256];
        char token[2048];
};
int s3_creds_parse(const char *text, size_t len, const char *profile, struct s3_creds *ret);

/*
 * The wait before retry attempt (1 = the first retry): full jitter, a uniform draw from
 * [0, min(cap_ms, base_ms * 2^(attempt - 1))] made from rnd.
 */
uint64_t s3_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd);

/* Whether an answer is worth retrying: 5xx, 429, S3 codes SlowDown, RequestTimeout,
 * InternalError, RequestTimeTooSkewed. */
bool s3_status_retryable(long status, const char *code);
