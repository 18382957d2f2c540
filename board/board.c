/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The board registry and what the boards share: option tables, identity
 * files, path joining, LED class devices, the watchdog device.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "board.h"
#include "floe-alloc.h"

static const struct board_ops *const boards[] = {
        &board_sim_ops,
        &board_linux_generic_ops,
        &board_rpi_ops,
};

const struct board_ops *board_find(const char *name)
{
        if (!name)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(boards); i++)
                if (strcmp(boards[i]->name, name) == 0)
                        return boards[i];
        return NULL;
}

const struct board_ops *board_at(size_t i)
{
        return i < ELEMENTSOF(boards) ? boards[i] : NULL;
}

int board_section(const struct board_ops *b, char *buf, size_t size)
{
        int k = snprintf(buf, size, "board.%s", b->name);

        if (k < 0 || (size_t)k >= size)
                return -ENOBUFS;
        return 0;
}

struct known_ctx {
        const struct board_opt *opts;
        const struct floe_config *cfg;
        struct floe_config_error *err;
};

static int check_known(const char *section, const char *key, const char *value, void *userdata)
{
        const struct known_ctx *c = userdata;

        (void)value;
        for (const struct board_opt *o = c->opts; o->key; o++)
                if (strcmp(o->key, key) == 0)
                        return 0;
        return floe_config_key_error(c->cfg, section, key, -EINVAL, c->err, "unknown key");
}

static int opt_load(const struct board_opt *o, const struct floe_config *cfg, const char *section,
                    char *field, struct floe_config_error *err)
{
        uint64_t def = 0, v;
        const char *s;
        size_t n;
        int r;

        switch (o->type) {
        case BOARD_OPT_STRING:
                r = floe_config_get_string(cfg, section, o->key, o->def ? o->def : "", &s);
                if (r < 0)
                        return r;
                n = strlen(s);
                if (n >= o->size)
                        return floe_config_key_error(cfg, section, o->key, -ENAMETOOLONG, err,
                                                     "longer than %zu bytes", o->size - 1);
                memcpy(field, s, n + 1);
                return 0;
        case BOARD_OPT_UINT:
                if (o->def && floe_parse_uint64(o->def, &def) < 0)
                        return floe_config_key_error(cfg, section, o->key, -EINVAL, err,
                                                     "bad built-in default %s", o->def);
                r = floe_config_get_uint64(cfg, section, o->key, def, o->min, o->max, &v, err);
                break;
        case BOARD_OPT_DURATION:
                if (o->def && floe_parse_duration(o->def, &def) < 0)
                        return floe_config_key_error(cfg, section, o->key, -EINVAL, err,
                                                     "bad built-in default %s", o->def);
                r = floe_config_get_duration(cfg, section, o->key, def, o->min, o->max, &v, err);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        memcpy(field, &v, sizeof(v));
        return 0;
}

int board_opts_load(const struct board_opt *opts, const struct floe_config *cfg,
                    const char *section, void *settings, struct floe_config_error *err)
{
        struct known_ctx c = {.opts = opts, .cfg = cfg, .err = err};
        int r;

        r = floe_config_foreach_key(cfg, section, check_known, &c);
        if (r < 0)
                return r;
        for (const struct board_opt *o = opts; o->key; o++) {
                r = opt_load(o, cfg, section, (char *)settings + o->offset, err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int board_identity_check(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n >= BOARD_IDENTITY_MAX || !is_lower_alnum(s[0]))
                return -EINVAL;
        for (size_t i = 1; i < n; i++)
                if (!is_lower_alnum(s[i]) && s[i] != '-')
                        return -EINVAL;
        return 0;
}

static bool is_trailing_junk(char c)
{
        return c == '\0' || c == '\n' || c == '\r' || c == ' ' || c == '\t';
}

/* Reads up to size - 1 bytes, cuts trailing NULs and white space; returns the length. */
static ssize_t read_trimmed(const char *path, char *buf, size_t size)
{
        size_t n = 0;
        int fd;

        if (size == 0)
                return -ENOBUFS;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        while (n < size - 1) {
                ssize_t k = read(fd, buf + n, size - 1 - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        close(fd);
        while (n > 0 && is_trailing_junk(buf[n - 1]))
                n--;
        buf[n] = '\0';
        return (ssize_t)n;
}

int board_read_text(const char *path, char *buf, size_t size)
{
        ssize_t n = read_trimmed(path, buf, size);

        if (n < 0)
                return (int)n;
        return strlen(buf) == (size_t)n ? 0 : -EINVAL; /* a NUL inside */
}

int board_identity_read(const char *path, char *buf, size_t size)
{
        char id[128];
        ssize_t n = read_trimmed(path, id, sizeof(id));

        if (n < 0)
                return (int)n;
        if (strlen(id) != (size_t)n)
                return -EINVAL;
        for (ssize_t i = 0; i < n; i++)
                if (id[i] >= 'A' && id[i] <= 'Z')
                        id[i] = (char)(id[i] - 'A' + 'a');
        if (board_identity_check(id) < 0)
                return -EINVAL;
        if ((size_t)n >= size)
                return -ENOBUFS;
        memcpy(buf, id, (size_t)n + 1);
        return 0;
}

int board_write_text(const char *path, const char *text)
{
        size_t len = strlen(text), off = 0;
        int fd, r = 0;

        fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        while (off < len) {
                ssize_t k = write(fd, text + off, len - off);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        r = k < 0 ? -errno : -EIO;
                        break;
                }
                off += (size_t)k;
        }
        if (close(fd) < 0 && r == 0 && errno != EINTR)
                r = -errno; /* sysfs may report a rejected value only here */
        return r;
}

int board_path_join(char *buf, size_t size, const char *root, const char *rel)
{
        size_t rn = strlen(root);
        int k;

        while (rn > 0 && root[rn - 1] == '/')
                rn--;
        while (*rel == '/')
                rel++;
        if (rn > INT_MAX)
                return -ENAMETOOLONG;
        k = snprintf(buf, size, "%.*s/%s", (int)rn, root, rel);
        if (k < 0 || (size_t)k >= size)
                return -ENAMETOOLONG;
        return 0;
}

size_t board_name_sanitize(const char *s, char *buf, size_t size)
{
        size_t n = 0;
        bool dash = false;

        if (size == 0)
                return 0;
        for (; *s; s++) {
                char c = *s;
                size_t need;

                if (c >= 'A' && c <= 'Z')
                        c = (char)(c - 'A' + 'a');
                if (!is_lower_alnum(c) && c != '_' && c != '.') {
                        dash = true;
                        continue;
                }
                need = dash && n > 0 ? 2 : 1;
                if (n + need > size - 1)
                        break;
                if (need == 2)
                        buf[n++] = '-';
                buf[n++] = c;
                dash = false;
        }
        buf[n] = '\0';
        return n;
}

static int parse_handle(const char *s)
{
        uint64_t v = 0;
        size_t n = 0;

        if (strncmp(s, "handle:0x", 9) != 0)
                return -EINVAL;
        for (s += 9; *s; s++, n++) {
                char c = *s;
                unsigned d;

                if (c >= '0' && c <= '9')
                        d = (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        d = (unsigned)(c - 'A' + 10);
                else
                        return -EINVAL;
                v = v * 16 + d;
                if (n >= 8)
                        return -EINVAL;
        }
        /* TPM 2.0 persistent object handles */
        return n == 8 && v >= 0x81000000 && v <= 0x81ffffff ? 0 : -EINVAL;
}

int board_key_resolve(const struct floe_config *cfg, const char *section, const char *key,
                      bool allow_handle, char *buf, size_t size, struct floe_config_error *err)
{
        const char *dir;
        size_t n;
        int r, k;

        if (key[0] != '\0') {
                if (strncmp(key, "handle:", 7) == 0) {
                        if (!allow_handle)
                                return floe_config_key_error(
                                        cfg, section, "key", -EINVAL, err,
                                        "TPM handles need the linux-generic or rpi board");
                        if (parse_handle(key) < 0)
                                return floe_config_key_error(
                                        cfg, section, "key", -EINVAL, err,
                                        "expected handle:0x81xxxxxx (a TPM persistent handle)");
                } else if (key[0] != '/') {
                        return floe_config_key_error(cfg, section, "key", -EINVAL, err,
                                                     "expected an absolute path or handle:0x...");
                }
                n = strlen(key);
                if (n >= size)
                        return floe_config_key_error(cfg, section, "key", -ENAMETOOLONG, err,
                                                     "too long");
                memcpy(buf, key, n + 1);
                return 0;
        }
        r = floe_config_get_string(cfg, "agent", "state_dir", BOARD_STATE_DIR_DEFAULT, &dir);
        if (r < 0)
                return r;
        n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
                n--;
        if (n > INT_MAX)
                return -ENAMETOOLONG;
        k = snprintf(buf, size, "%.*s/device.key", (int)n, dir);
        if (k < 0 || (size_t)k >= size)
                return floe_config_key_error(cfg, "agent", "state_dir", -ENAMETOOLONG, err,
                                             "too long for the key path");
        return 0;
}

/* <led dir>/<attr> */
static int led_path(const struct board_led *led, const char *attr, char *buf, size_t size)
{
        return board_path_join(buf, size, led->dir, attr);
}

static int led_write(const struct board_led *led, const char *attr, const char *text)
{
        char path[PATH_MAX];
        int r = led_path(led, attr, path, sizeof(path));

        if (r < 0)
                return r;
        return board_write_text(path, text);
}

static void led_read(const struct board_led *led, const char *attr, char *buf, size_t size,
                     const char *def)
{
        char path[PATH_MAX];

        if (led_path(led, attr, path, sizeof(path)) < 0 || board_read_text(path, buf, size) < 0 ||
            buf[0] == '\0')
                snprintf(buf, size, "%s", def);
}

/* The trigger file lists every trigger with the active one in brackets; a file
 * standing in for it may hold just one name. */
static void trigger_active(const char *list, char *buf, size_t size)
{
        const char *a = strchr(list, '['), *b = a ? strchr(a, ']') : NULL;

        if (!a && list[0] != '\0' && !strchr(list, ' ') && strlen(list) < size) {
                memcpy(buf, list, strlen(list) + 1);
                return;
        }
        if (!a || !b || (size_t)(b - a - 1) >= size) {
                snprintf(buf, size, "none");
                return;
        }
        memcpy(buf, a + 1, (size_t)(b - a - 1));
        buf[b - a - 1] = '\0';
}

int board_led_open(struct board_led *led, const char *dir)
{
        char list[1024];
        size_t n = strlen(dir);
        int r;

        if (n >= sizeof(led->dir))
                return -ENAMETOOLONG;
        memcpy(led->dir, dir, n + 1);
        led_read(led, "trigger", list, sizeof(list), "");
        led_read(led, "brightness", led->saved_brightness, sizeof(led->saved_brightness), "0");
        led_read(led, "max_brightness", led->brightness_on, sizeof(led->brightness_on), "1");
        trigger_active(list, led->saved_trigger, sizeof(led->saved_trigger));
        r = led_write(led, "trigger", "none");
        if (r < 0)
                return r;
        led->lit = strcmp(led->saved_brightness, "0") != 0;
        led->state = led->lit ? BOARD_LED_OK : BOARD_LED_OFF;
        led->present = true;
        return 0;
}

int board_led_set(struct board_led *led, enum board_led_state s)
{
        int r = 0;

        if (s < 0 || s >= _BOARD_LED_MAX)
                return -EINVAL;
        if (!led->present)
                return 0;
        if (led->state == BOARD_LED_ERROR && s != BOARD_LED_ERROR) {
                r = led_write(led, "trigger", "none");
                if (r < 0)
                        return r;
        }
        switch (s) {
        case BOARD_LED_OFF:
        case BOARD_LED_OK:
        case BOARD_LED_BUSY: {
                bool on = s == BOARD_LED_OK || (s == BOARD_LED_BUSY && !led->lit);

                r = led_write(led, "brightness", on ? led->brightness_on : "0");
                if (r < 0)
                        return r;
                led->lit = on;
                break;
        }
        case BOARD_LED_ERROR:
                if (led->state == BOARD_LED_ERROR)
                        break;
                /* The kernel creates delay_on/delay_off when the timer trigger is set. */
                r = led_write(led, "trigger", "timer");
                if (r >= 0)
                        r = led_write(led, "delay_on", "100");
                if (r >= 0)
                        r = led_write(led, "delay_off", "100");
                if (r < 0)
                        return r;
                led->lit = true;
                break;
        default:
                return -EINVAL;
        }
        led->state = s;
        return 0;
}

void board_led_close(struct board_led *led)
{
        if (!led->present)
                return;
        (void)led_write(led, "trigger", led->saved_trigger);
        if (strcmp(led->saved_trigger, "none") == 0)
                (void)led_write(led, "brightness", led->saved_brightness);
        led->present = false;
}

void board_watchdog_init(struct board_watchdog *wd, const char *path)
{
        size_t n = strlen(path);

        wd->fd = -1;
        wd->timeout_us = 0;
        wd->kicks = 0;
        if (n >= sizeof(wd->path))
                n = 0; /* callers pass paths of the same size */
        memcpy(wd->path, path, n);
        wd->path[n] = '\0';
}

int board_watchdog_open(struct board_watchdog *wd)
{
        int fd, t;

        if (wd->path[0] == '\0' || wd->fd >= 0)
                return 0;
        fd = open(wd->path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (wd->timeout_us > 0) {
                t = (int)(wd->timeout_us / 1000000);
                /* ENOTTY: not a watchdog device (a file standing in for one in tests) */
                if (ioctl(fd, WDIOC_SETTIMEOUT, &t) < 0 && errno != ENOTTY) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
        }
        if (ioctl(fd, WDIOC_GETTIMEOUT, &t) == 0 && t > 0)
                wd->timeout_us = (uint64_t)t * 1000000;
        wd->fd = fd;
        return 0;
}

static int watchdog_write(int fd, char c)
{
        for (;;) {
                ssize_t k = write(fd, &c, 1);

                if (k == 1)
                        return 0;
                if (k < 0 && errno == EINTR)
                        continue;
                return k < 0 ? -errno : -EIO;
        }
}

int board_watchdog_kick(struct board_watchdog *wd)
{
        int r;

        if (wd->fd < 0)
                return wd->path[0] == '\0' ? 0 : -EBADF;
        /* Any byte but 'V' is a keepalive; WDIOC_KEEPALIVE would need a real device. */
        r = watchdog_write(wd->fd, '\0');
        if (r < 0)
                return r;
        wd->kicks++;
        return 0;
}

void board_watchdog_close(struct board_watchdog *wd, bool magic_close)
{
        if (wd->fd < 0)
                return;
        if (magic_close)
                (void)watchdog_write(wd->fd, 'V');
        close(wd->fd);
        wd->fd = -1;
}
