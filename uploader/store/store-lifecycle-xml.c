/* SPDX-License-Identifier: Apache-2.0 */
/* Bucket lifecycle configurations: reading the caller's rules and keeping the others verbatim,
 * comparing, and writing the document to PUT. No I/O (store-lifecycle.c does it). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "s3-util.h"
#include "store-lifecycle.h"

#define MAX_RULES  1000 /* S3's limit per bucket */
#define PREFIX_MAX 1024

struct parse {
        const char *owned;
        struct lake_lifecycle_config *c;
        struct lake_lifecycle_seen cur;
        bool cur_owned;
        uint32_t days;
        char cls[LAKE_LIFECYCLE_CLASS_MAX + 1];
        bool tr_bad;
        size_t n_rules;
        bool *keep; /* per rule in document order: not the caller's */
        size_t cap;
};

static bool eq(const char *a, const char *b)
{
        return strcmp(a, b) == 0;
}

static int parse_u32(const char *s, uint32_t *ret)
{
        uint64_t v = 0;

        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                v = v * 10 + (uint64_t)(*s - '0');
                if (v > UINT32_MAX)
                        return -ERANGE;
        }
        *ret = (uint32_t)v;
        return 0;
}

static bool copy_text(char *dst, size_t size, const char *text, size_t len)
{
        if (len >= size)
                return false;
        memcpy(dst, text, len);
        dst[len] = '\0';
        return true;
}

static int end_rule(struct parse *p)
{
        if (p->n_rules == MAX_RULES)
                return -E2BIG;
        if (p->n_rules == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 16;
                bool *k = floe_reallocarray(p->keep, cap, sizeof(*k));

                if (!k)
                        return -ENOMEM;
                p->keep = k;
                p->cap = cap;
        }
        p->keep[p->n_rules++] = !p->cur_owned;
        if (p->cur_owned) {
                struct lake_lifecycle_seen *o =
                        floe_reallocarray(p->c->ours, p->c->n_ours + 1, sizeof(*o));

                if (!o)
                        return -ENOMEM;
                p->c->ours = o;
                o[p->c->n_ours++] = p->cur;
        }
        p->cur = (struct lake_lifecycle_seen){0};
        p->cur_owned = false;
        return 0;
}

/* An element inside a <Rule> (path[1]), at its end tag. */
static void rule_part(struct parse *p, const char *const *path, size_t depth, const char *text,
                      size_t len)
{
        struct lake_lifecycle_seen *r = &p->cur;
        const char *e = path[depth - 1];

        if (depth == 3 && text && eq(e, "ID")) {
                p->cur_owned = strncmp(text, p->owned, strlen(p->owned)) == 0 &&
                               copy_text(r->id, sizeof(r->id), text, len);
        } else if (depth == 3 && text && eq(e, "Status")) {
                r->enabled = eq(text, "Enabled");
        } else if (depth == 3 && eq(e, "Filter")) {
                if (text && len) /* a filter has elements or nothing */
                        r->other = true;
        } else if (depth == 3 && eq(e, "Transition")) {
                if (p->tr_bad || !p->days || !p->cls[0] ||
                    r->n_transitions == LAKE_LIFECYCLE_TRANSITIONS) {
                        r->other = true;
                } else {
                        r->transitions[r->n_transitions].days = p->days;
                        memcpy(r->transitions[r->n_transitions].storage_class, p->cls,
                               sizeof(p->cls));
                        r->n_transitions++;
                }
                p->days = 0;
                p->cls[0] = '\0';
                p->tr_bad = false;
        } else if (depth == 3 && eq(e, "AbortIncompleteMultipartUpload")) {
                if (!r->abort_multipart_days)
                        r->other = true;
        } else if (depth == 4 && text && eq(path[2], "Filter") && eq(e, "Prefix")) {
                if (!copy_text(r->prefix, sizeof(r->prefix), text, len))
                        r->other = true;
        } else if (depth == 4 && text && eq(path[2], "Transition") && eq(e, "Days")) {
                if (parse_u32(text, &p->days) < 0)
                        p->tr_bad = true;
        } else if (depth == 4 && text && eq(path[2], "Transition") && eq(e, "StorageClass")) {
                if (!copy_text(p->cls, sizeof(p->cls), text, len))
                        p->tr_bad = true;
        } else if (depth == 4 && text && eq(path[2], "AbortIncompleteMultipartUpload") &&
                   eq(e, "DaysAfterInitiation")) {
                if (parse_u32(text, &r->abort_multipart_days) < 0)
                        r->other = true;
        } else if (depth == 4 && eq(path[2], "Transition")) {
                p->tr_bad = true; /* <Date>: not ours */
        } else {
                r->other = true; /* Expiration, And, Tag, a rule-level Prefix, ... */
        }
}

static int parse_fn(void *ud, const char *const *path, size_t depth, const char *text, size_t len)
{
        struct parse *p = ud;

        if (!eq(path[0], "LifecycleConfiguration"))
                return -EBADMSG;
        if (depth < 2 || !eq(path[1], "Rule"))
                return 0; /* the root, or something beside the rules: ignored */
        if (depth == 2)
                return end_rule(p);
        rule_part(p, path, depth, text, len);
        return 0;
}

/* The name of the tag at q (just past '<' or "</") into name, cut to size - 1 bytes. */
static void tag_name(const char *q, const char *end, char *name, size_t size)
{
        size_t n = 0;

        while (q < end && *q != '>' && *q != '/' && *q != ' ' && *q != '\t' && *q != '\r' &&
               *q != '\n' && n + 1 < size)
                name[n++] = *q++;
        name[n] = '\0';
}

/* Past the '>' of the tag starting at q ('<'); quoted attribute values may hold '>'. */
static const char *tag_end(const char *q, const char *end, bool *ret_empty)
{
        char quote = 0;

        for (q++; q < end; q++) {
                if (quote) {
                        quote = *q == quote ? 0 : quote;
                } else if (*q == '"' || *q == '\'') {
                        quote = *q;
                } else if (*q == '>') {
                        *ret_empty = q[-1] == '/';
                        return q + 1;
                }
        }
        return end;
}

/* Appends the other rules' text, in document order (the document is known to be well formed:
 * only tags, comments and declarations hold '<'). */
static int keep_rules(const char *xml, size_t len, struct parse *p)
{
        struct lake_lifecycle_config *c = p->c;
        const char *q = xml, *end = xml + len, *start = NULL;
        size_t depth = 0, rule = 0;
        char name[16];

        c->keep = floe_malloc(len + 1);
        if (!c->keep)
                return -ENOMEM;
        while (q < end) {
                const char *next = memchr(q, '<', (size_t)(end - q));
                bool empty = false, closing;

                if (!next)
                        break;
                q = next;
                if (end - q >= 4 && memcmp(q, "<!--", 4) == 0) {
                        const char *e = memmem(q, (size_t)(end - q), "-->", 3);

                        q = e ? e + 3 : end;
                        continue;
                }
                if (end - q >= 2 && q[1] == '?') {
                        const char *e = memmem(q, (size_t)(end - q), "?>", 2);

                        q = e ? e + 2 : end;
                        continue;
                }
                closing = end - q >= 2 && q[1] == '/';
                tag_name(q + (closing ? 2 : 1), end, name, sizeof(name));
                next = tag_end(q, end, &empty);
                if (!closing && depth == 1 && eq(name, "Rule"))
                        start = q;
                if (closing)
                        depth--;
                else if (!empty)
                        depth++;
                if (start && depth == 1 && (closing || empty) && eq(name, "Rule")) {
                        if (rule < p->n_rules && p->keep[rule]) {
                                memcpy(c->keep + c->keep_len, start, (size_t)(next - start));
                                c->keep_len += (size_t)(next - start);
                                c->n_keep++;
                        }
                        rule++;
                        start = NULL;
                }
                q = next;
        }
        c->keep[c->keep_len] = '\0';
        return rule == p->n_rules ? 0 : -EBADMSG;
}

void lake_lifecycle_config_clear(struct lake_lifecycle_config *c)
{
        floe_free(c->keep);
        floe_free(c->ours);
        *c = (struct lake_lifecycle_config){0};
}

int lake_lifecycle_parse(const char *xml, size_t len, const char *owned,
                         struct lake_lifecycle_config *ret)
{
        struct lake_lifecycle_config c = {0};
        struct parse p = {.owned = owned ? owned : LAKE_LIFECYCLE_OWNED, .c = &c};
        char root[32];
        int r;

        r = s3_xml_root(xml, len, root, sizeof(root));
        if (r == 0 && !eq(root, "LifecycleConfiguration"))
                r = -EBADMSG;
        if (r == 0)
                r = s3_xml_walk(xml, len, parse_fn, &p);
        if (r == 0)
                r = keep_rules(xml, len, &p);
        floe_free(p.keep);
        if (r < 0) {
                lake_lifecycle_config_clear(&c);
                return r;
        }
        *ret = c;
        return 0;
}

static bool text_ok(const char *s, size_t max)
{
        size_t n = strlen(s);

        if (n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

static bool class_ok(const char *c)
{
        size_t n = c ? strlen(c) : 0;

        return n > 0 && n <= LAKE_LIFECYCLE_CLASS_MAX &&
               strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n && !eq(c, "STANDARD");
}

int lake_lifecycle_check(const char *owned, const struct lake_lifecycle_rule *rules, size_t n)
{
        if (!owned)
                owned = LAKE_LIFECYCLE_OWNED;
        if (n > MAX_RULES || (n && !rules))
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                const struct lake_lifecycle_rule *r = &rules[i];

                if (!r->id || !*r->id || strncmp(r->id, owned, strlen(owned)) != 0 ||
                    !text_ok(r->id, LAKE_LIFECYCLE_ID_MAX) || !r->prefix ||
                    !text_ok(r->prefix, PREFIX_MAX) ||
                    r->n_transitions > LAKE_LIFECYCLE_TRANSITIONS ||
                    (r->n_transitions == 0 && r->abort_multipart_days == 0))
                        return -EINVAL;
                for (size_t k = 0; k < r->n_transitions; k++)
                        if (!class_ok(r->transitions[k].storage_class) ||
                            r->transitions[k].days == 0 ||
                            (k > 0 && r->transitions[k].days <= r->transitions[k - 1].days))
                                return -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (eq(rules[j].id, r->id))
                                return -EINVAL;
        }
        return 0;
}

/* key_prefix + "/" + prefix (or prefix alone) into buf. */
static int full_prefix(const char *key_prefix, const char *prefix, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s%s%s", key_prefix, *key_prefix ? "/" : "", prefix);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static bool same_rule(const struct lake_lifecycle_seen *s, const struct lake_lifecycle_rule *r,
                      const char *key_prefix)
{
        char want[2048];

        if (!s->enabled || s->other || s->n_transitions != r->n_transitions ||
            s->abort_multipart_days != r->abort_multipart_days ||
            full_prefix(key_prefix, r->prefix, want, sizeof(want)) < 0 || !eq(s->prefix, want))
                return false;
        for (size_t k = 0; k < r->n_transitions; k++) {
                bool found = false;

                for (size_t j = 0; j < s->n_transitions && !found; j++)
                        found = s->transitions[j].days == r->transitions[k].days &&
                                eq(s->transitions[j].storage_class,
                                   r->transitions[k].storage_class);
                if (!found)
                        return false;
        }
        return true;
}

bool lake_lifecycle_same(const struct lake_lifecycle_config *c,
                         const struct lake_lifecycle_rule *rules, size_t n, const char *key_prefix)
{
        if (c->n_ours != n)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool found = false;

                for (size_t j = 0; j < c->n_ours && !found; j++)
                        found = eq(c->ours[j].id, rules[i].id) &&
                                same_rule(&c->ours[j], &rules[i], key_prefix);
                if (!found)
                        return false;
        }
        return true;
}

/* A growable text buffer (s3_buf belongs to the HTTP code; this file stays pure). */
struct text_buf {
        char *p;
        size_t len, cap;
};

static int append(struct text_buf *b, const char *s, size_t n)
{
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 1024;

                while (cap < b->len + n + 1)
                        cap *= 2;
                char *p = floe_realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

static int append_str(struct text_buf *b, const char *s)
{
        return append(b, s, strlen(s));
}

static int append_escaped(struct text_buf *b, const char *s)
{
        int r = 0;

        for (; r == 0 && *s; s++) {
                switch (*s) {
                case '&':
                        r = append_str(b, "&amp;");
                        break;
                case '<':
                        r = append_str(b, "&lt;");
                        break;
                case '>':
                        r = append_str(b, "&gt;");
                        break;
                case '"':
                        r = append_str(b, "&quot;");
                        break;
                case '\'':
                        r = append_str(b, "&apos;");
                        break;
                default:
                        r = append(b, s, 1);
                }
        }
        return r;
}

static int append_rule(struct text_buf *b, const struct lake_lifecycle_rule *rule,
                       const char *key_prefix)
{
        char prefix[2048], line[160];
        int r;

        r = full_prefix(key_prefix, rule->prefix, prefix, sizeof(prefix));
        if (r == 0)
                r = append_str(b, "<Rule><ID>");
        if (r == 0)
                r = append_escaped(b, rule->id);
        if (r == 0)
                r = append_str(b, "</ID><Filter><Prefix>");
        if (r == 0)
                r = append_escaped(b, prefix);
        if (r == 0)
                r = append_str(b, "</Prefix></Filter><Status>Enabled</Status>");
        for (size_t k = 0; r == 0 && k < rule->n_transitions; k++) {
                snprintf(line, sizeof(line),
                         "<Transition><Days>%" PRIu32 "</Days><StorageClass>%s</StorageClass>"
                         "</Transition>",
                         rule->transitions[k].days, rule->transitions[k].storage_class);
                r = append_str(b, line);
        }
        if (r == 0 && rule->abort_multipart_days) {
                snprintf(line, sizeof(line),
                         "<AbortIncompleteMultipartUpload><DaysAfterInitiation>%" PRIu32
                         "</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
                         rule->abort_multipart_days);
                r = append_str(b, line);
        }
        if (r == 0)
                r = append_str(b, "</Rule>");
        return r;
}

int lake_lifecycle_xml(const struct lake_lifecycle_config *keep,
                       const struct lake_lifecycle_rule *rules, size_t n, const char *key_prefix,
                       char **ret, size_t *ret_len)
{
        struct text_buf b = {0};
        int r;

        r = append_str(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                           "<LifecycleConfiguration "
                           "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
        if (r == 0 && keep && keep->keep_len)
                r = append(&b, keep->keep, keep->keep_len);
        for (size_t i = 0; r == 0 && i < n; i++)
                r = append_rule(&b, &rules[i], key_prefix ? key_prefix : "");
        if (r == 0)
                r = append_str(&b, "</LifecycleConfiguration>");
        if (r < 0) {
                floe_free(b.p);
                return r;
        }
        *ret = b.p;
        *ret_len = b.len;
        return 0;
}
