/* SPDX-License-Identifier: Apache-2.0 */
/* The XML S3 answers with, read minimally: bounded depth and text, strict nesting. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "s3-util.h"

#define NAME_MAX_LEN 63

struct xml {
        const char *p, *end;
        s3_xml_fn fn;
        void *ud;
        size_t depth;
        char names[S3_XML_DEPTH][NAME_MAX_LEN + 1];
        const char *path[S3_XML_DEPTH];
        bool has_child[S3_XML_DEPTH];
        char text[S3_XML_TEXT + 1];
        size_t tlen;
};

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Control characters XML 1.0 does not allow (NUL included). */
static bool bad_char(char c)
{
        return ((unsigned char)c < 0x20 && !is_space(c)) || c == 0x7f;
}

static bool starts(const struct xml *x, const char *s)
{
        size_t n = strlen(s);

        return (size_t)(x->end - x->p) >= n && memcmp(x->p, s, n) == 0;
}

/* Skips to just past the terminator; -EBADMSG if it never comes. */
static int skip_past(struct xml *x, const char *term)
{
        size_t n = strlen(term);

        for (const char *q = x->p; (size_t)(x->end - q) >= n; q++)
                if (memcmp(q, term, n) == 0) {
                        x->p = q + n;
                        return 0;
                }
        return -EBADMSG;
}

static int put_utf8(struct xml *x, uint32_t c)
{
        uint8_t b[4];
        size_t n;

        if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                return -EBADMSG;
        if (c < 0x80) {
                b[0] = (uint8_t)c, n = 1;
        } else if (c < 0x800) {
                b[0] = (uint8_t)(0xc0 | (c >> 6)), b[1] = (uint8_t)(0x80 | (c & 0x3f)), n = 2;
        } else if (c < 0x10000) {
                b[0] = (uint8_t)(0xe0 | (c >> 12)), b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
                b[2] = (uint8_t)(0x80 | (c & 0x3f)), n = 3;
        } else {
                b[0] = (uint8_t)(0xf0 | (c >> 18)), b[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
                b[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f)), b[3] = (uint8_t)(0x80 | (c & 0x3f));
                n = 4;
        }
        if (x->tlen + n > S3_XML_TEXT)
                return -EBADMSG;
        memcpy(x->text + x->tlen, b, n);
        x->tlen += n;
        return 0;
}

/* An entity or character reference at x->p ('&'), decoded into the text. */
static int entity(struct xml *x)
{
        static const struct {
                const char *name;
                char c;
        } named[] = {
                {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        uint32_t c = 0;
        const char *q;
        int base = 10, nd = 0;

        for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
                if (starts(x, named[i].name)) {
                        x->p += strlen(named[i].name);
                        return put_utf8(x, (unsigned char)named[i].c);
                }
        if (!starts(x, "&#"))
                return -EBADMSG;
        q = x->p + 2;
        if (q < x->end && *q == 'x') {
                base = 16;
                q++;
        }
        for (; q < x->end && *q != ';'; q++, nd++) {
                int d;

                if (*q >= '0' && *q <= '9')
                        d = *q - '0';
                else if (base == 16 && *q >= 'a' && *q <= 'f')
                        d = *q - 'a' + 10;
                else if (base == 16 && *q >= 'A' && *q <= 'F')
                        d = *q - 'A' + 10;
                else
                        return -EBADMSG;
                if (nd >= 8)
                        return -EBADMSG;
                c = c * (uint32_t)base + (uint32_t)d;
        }
        if (q >= x->end || nd == 0)
                return -EBADMSG;
        x->p = q + 1;
        return put_utf8(x, c);
}

/* Character data up to the next '<'. */
static int text(struct xml *x)
{
        while (x->p < x->end && *x->p != '<') {
                if (x->depth == 0) {
                        if (!is_space(*x->p))
                                return -EBADMSG; /* text outside the root */
                        x->p++;
                        continue;
                }
                if (*x->p == '&') {
                        int r = entity(x);

                        if (r < 0)
                                return r;
                        continue;
                }
                if (x->tlen >= S3_XML_TEXT || bad_char(*x->p))
                        return -EBADMSG;
                x->text[x->tlen++] = *x->p++;
        }
        return 0;
}

/* An element name at x->p into name. */
static int name(struct xml *x, char *name)
{
        size_t n = 0;

        while (x->p < x->end && !is_space(*x->p) && *x->p != '>' && *x->p != '/' && *x->p != '<' &&
               *x->p != '=') {
                if (n >= NAME_MAX_LEN || bad_char(*x->p) || *x->p == '"' || *x->p == '\'' ||
                    *x->p == '&')
                        return -EBADMSG;
                name[n++] = *x->p++;
        }
        name[n] = '\0';
        return n ? 0 : -EBADMSG;
}

/* The rest of a start tag after its name: attributes skipped. *ret_empty for "/>". */
static int tag_rest(struct xml *x, bool *ret_empty)
{
        char quote = 0;

        for (; x->p < x->end; x->p++) {
                char c = *x->p;

                if (bad_char(c))
                        return -EBADMSG;
                if (quote) {
                        if (c == quote)
                                quote = 0;
                        else if (c == '<')
                                return -EBADMSG;
                        continue;
                }
                if (c == '"' || c == '\'') {
                        quote = c;
                } else if (c == '>') {
                        x->p++;
                        *ret_empty = false;
                        return 0;
                } else if (c == '/') {
                        if (x->end - x->p < 2 || x->p[1] != '>')
                                return -EBADMSG;
                        x->p += 2;
                        *ret_empty = true;
                        return 0;
                } else if (c == '<') {
                        return -EBADMSG;
                }
        }
        return -EBADMSG;
}

/* Ends the innermost element: reports it and pops it. */
static int close_element(struct xml *x)
{
        size_t d = x->depth;
        int r;

        x->text[x->tlen] = '\0';
        r = x->fn(x->ud, x->path, d, x->has_child[d - 1] ? NULL : x->text, x->tlen);
        x->depth--;
        x->tlen = 0;
        return r;
}

int s3_xml_walk(const char *xml, size_t len, s3_xml_fn fn, void *ud)
{
        struct xml *x;
        bool root_done = false;
        int r = 0;

        x = floe_calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->p = xml;
        x->end = xml + len;
        x->fn = fn;
        x->ud = ud;
        for (size_t i = 0; i < S3_XML_DEPTH; i++)
                x->path[i] = x->names[i];
        while (r == 0 && x->p < x->end) {
                if (*x->p != '<') {
                        r = text(x);
                        continue;
                }
                if (starts(x, "<?")) {
                        r = skip_past(x, "?>");
                } else if (starts(x, "<!--")) {
                        r = skip_past(x, "-->");
                } else if (starts(x, "<!")) {
                        r = -EBADMSG; /* DOCTYPE, CDATA: S3 sends neither */
                } else if (starts(x, "</")) {
                        char nm[NAME_MAX_LEN + 1];

                        x->p += 2;
                        r = name(x, nm);
                        while (r == 0 && x->p < x->end && is_space(*x->p))
                                x->p++;
                        if (r == 0 && (x->p >= x->end || *x->p != '>'))
                                r = -EBADMSG;
                        if (r == 0 && (x->depth == 0 || strcmp(nm, x->names[x->depth - 1])))
                                r = -EBADMSG;
                        if (r == 0) {
                                x->p++;
                                r = close_element(x);
                                root_done = x->depth == 0;
                        }
                } else {
                        bool empty = false;

                        if (root_done || x->depth == S3_XML_DEPTH) {
                                r = -EBADMSG;
                                break;
                        }
                        x->p++;
                        r = name(x, x->names[x->depth]);
                        if (r == 0)
                                r = tag_rest(x, &empty);
                        if (r < 0)
                                break;
                        if (x->depth > 0)
                                x->has_child[x->depth - 1] = true;
                        x->has_child[x->depth] = false;
                        x->depth++;
                        x->tlen = 0;
                        if (empty) {
                                r = close_element(x);
                                root_done = x->depth == 0;
                        }
                }
        }
        if (r == 0 && (!root_done || x->depth != 0))
                r = -EBADMSG; /* empty, or cut short */
        floe_free(x);
        return r;
}

/* -- helpers over the walk ------------------------------------------------------------------ */

struct find {
        const char *path; /* "A/B/C" */
        char *out;
        size_t size;
        int found;
};

static bool path_is(const char *const *path, size_t depth, const char *want)
{
        for (size_t i = 0; i < depth; i++) {
                size_t n = strlen(path[i]);

                if (strncmp(want, path[i], n) != 0)
                        return false;
                want += n;
                if (i + 1 < depth) {
                        if (*want != '/')
                                return false;
                        want++;
                }
        }
        return *want == '\0';
}

static int find_fn(void *ud, const char *const *path, size_t depth, const char *text, size_t len)
{
        struct find *f = ud;

        if (!text || !path_is(path, depth, f->path))
                return 0;
        if (len >= f->size) {
                f->found = -ENOBUFS;
                return 1;
        }
        memcpy(f->out, text, len + 1);
        f->found = 1;
        return 1;
}

int s3_xml_find(const char *xml, size_t len, const char *path, char *out, size_t size)
{
        struct find f = {.path = path, .out = out, .size = size};
        int r = s3_xml_walk(xml, len, find_fn, &f);

        if (f.found < 0)
                return f.found;
        if (f.found)
                return 0;
        return r < 0 ? r : -ENOENT;
}

struct root {
        char *out;
        size_t size;
        int r;
};

static int root_fn(void *ud, const char *const *path, size_t depth, const char *text, size_t len)
{
        struct root *rt = ud;
        int n = snprintf(rt->out, rt->size, "%s", path[0]);

        (void)depth, (void)text, (void)len;
        rt->r = n < 0 || (size_t)n >= rt->size ? -ENOBUFS : 1;
        return 1;
}

int s3_xml_root(const char *xml, size_t len, char *out, size_t size)
{
        struct root rt = {.out = out, .size = size};
        int r = s3_xml_walk(xml, len, root_fn, &rt);

        if (rt.r < 0)
                return rt.r;
        return rt.r ? 0 : r < 0 ? r : -EBADMSG;
}

void s3_error_code(const char *xml, size_t len, char *code, size_t size)
{
        if (size == 0)
                return;
        if (s3_xml_find(xml, len, "Error/Code", code, size) < 0)
                code[0] = '\0';
}

struct list {
        s3_list_fn fn;
        void *ud;
        bool truncated, root_ok;
        char *token;
        size_t token_size;
        /* the <Contents> being read */
        char key[S3_XML_TEXT + 1];
        bool has_key, has_size, has_time;
        uint64_t size;
        int64_t mtime;
};

static int parse_u64(const char *s, uint64_t *ret)
{
        uint64_t v = 0;

        if (!*s || strlen(s) > 19)
                return -EBADMSG;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EBADMSG;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        *ret = v;
        return 0;
}

static int list_fn(void *ud, const char *const *path, size_t depth, const char *text, size_t len)
{
        struct list *l = ud;

        if (strcmp(path[0], "ListBucketResult") != 0)
                return -EBADMSG;
        l->root_ok = true;
        if (depth == 2 && strcmp(path[1], "Contents") == 0) {
                int r;

                if (text || !l->has_key || !l->has_size || !l->has_time)
                        return -EBADMSG;
                r = l->fn(l->ud, l->key, l->size, l->mtime);
                l->has_key = l->has_size = l->has_time = false;
                return r;
        }
        if (!text)
                return 0;
        if (depth == 2 && strcmp(path[1], "IsTruncated") == 0) {
                if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
                        return -EBADMSG;
                l->truncated = strcmp(text, "true") == 0;
        } else if (depth == 2 && strcmp(path[1], "NextContinuationToken") == 0) {
                if (len >= l->token_size)
                        return -EBADMSG;
                memcpy(l->token, text, len + 1);
        } else if (depth == 3 && strcmp(path[1], "Contents") == 0) {
                if (strcmp(path[2], "Key") == 0) {
                        if (len == 0 || l->has_key || strlen(text) != len)
                                return -EBADMSG;
                        memcpy(l->key, text, len + 1);
                        l->has_key = true;
                } else if (strcmp(path[2], "Size") == 0) {
                        if (parse_u64(text, &l->size) < 0 || l->size > INT64_MAX)
                                return -EBADMSG;
                        l->has_size = true;
                } else if (strcmp(path[2], "LastModified") == 0) {
                        if (s3_parse_time(text, &l->mtime) < 0)
                                return -EBADMSG;
                        l->has_time = true;
                }
        }
        return 0;
}

int s3_list_parse(const char *xml, size_t len, s3_list_fn fn, void *ud, bool *ret_truncated,
                  char *ret_token, size_t token_size)
{
        struct list *l;
        int r;

        if (token_size == 0)
                return -ENOBUFS;
        l = floe_calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->fn = fn;
        l->ud = ud;
        l->token = ret_token;
        l->token_size = token_size;
        ret_token[0] = '\0';
        r = s3_xml_walk(xml, len, list_fn, l);
        if (r == 0 && !l->root_ok)
                r = -EBADMSG;
        if (r == 0 && l->truncated && !ret_token[0])
                r = -EBADMSG;
        if (r == 0)
                *ret_truncated = l->truncated;
        floe_free(l);
        return r;
}
