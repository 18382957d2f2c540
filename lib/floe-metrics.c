/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "floe-alloc.h"

struct floe_metrics {
        char *buf;
        size_t cap;
        size_t len;
        int err;
};

int floe_metrics_new(size_t capacity, struct floe_metrics **ret)
{
        struct floe_metrics *m = floe_calloc(1, sizeof(*m));

        if (!m)
                return -ENOMEM;
        m->buf = floe_malloc(capacity);
        if (!m->buf) {
                floe_free(m);
                return -ENOMEM;
        }
        m->cap = capacity;
        *ret = m;
        return 0;
}

struct floe_metrics *floe_metrics_free(struct floe_metrics *m)
{
        if (m) {
                floe_free(m->buf);
                floe_free(m);
        }
        return NULL;
}

void floe_metrics_reset(struct floe_metrics *m)
{
        m->len = 0;
        m->err = 0;
}

__attribute__((format(printf, 2, 3))) static void add(struct floe_metrics *m, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (m->err)
                return;
        va_start(ap, fmt);
        n = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= m->cap - m->len)
                m->err = -ENOSPC;
        else
                m->len += (size_t)n;
}

void floe_metrics_family(struct floe_metrics *m, const char *name, const char *type,
                         const char *help)
{
        add(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void labels(struct floe_metrics *m, const char *const *l)
{
        if (!l || !l[0])
                return;
        add(m, "{");
        for (size_t i = 0; l[i] && l[i + 1]; i += 2) {
                add(m, "%s%s=\"", i ? "," : "", l[i]);
                for (const char *c = l[i + 1]; *c; c++) {
                        if (*c == '\\' || *c == '"')
                                add(m, "\\%c", *c);
                        else if (*c == '\n')
                                add(m, "\\n");
                        else
                                add(m, "%c", *c);
                }
                add(m, "\"");
        }
        add(m, "}");
}

void floe_metrics_u64(struct floe_metrics *m, const char *name, const char *const *l, uint64_t v)
{
        add(m, "%s", name);
        labels(m, l);
        add(m, " %" PRIu64 "\n", v);
}

void floe_metrics_double(struct floe_metrics *m, const char *name, const char *const *l, double v)
{
        add(m, "%s", name);
        labels(m, l);
        if (isnan(v))
                add(m, " NaN\n");
        else if (isinf(v))
                add(m, " %s\n", v > 0 ? "+Inf" : "-Inf");
        else
                add(m, " %.17g\n", v);
}

int floe_metrics_text(const struct floe_metrics *m, const char **ret, size_t *ret_len)
{
        if (m->err)
                return m->err;
        *ret = m->buf;
        *ret_len = m->len;
        return 0;
}

int floe_metrics_write_file(const struct floe_metrics *m, const char *path)
{
        char tmp[4096];
        size_t off = 0;
        int fd, r = 0;

        if (m->err)
                return m->err;
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        while (off < m->len) {
                ssize_t n = write(fd, m->buf + off, m->len - off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : -EIO;
                        break;
                }
                off += (size_t)n;
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}
