/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The linux-generic board, and the sysfs sensor scanner the rpi board
 * reuses: hwmon, thermal zones and IIO channels found under a root
 * directory. Scanning happens once at open (one fd per sensor file, kept
 * open); a poll is one pread per sensor and no allocation.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "board.h"
#include "floe-alloc.h"

struct chan {
        int fd;
        bool iio;
        int64_t div;          /* hwmon, thermal: value = raw / div */
        double offset, scale; /* iio: value = (raw + offset) * scale */
        size_t sensor_len, metric_len;
        char sensor[BOARD_NAME_MAX];
        char metric[BOARD_NAME_MAX];
};

struct board_linux {
        const struct board_linux_profile *profile;
        struct board_linux_settings set;
        struct chan *chans;
        size_t n_chans, cap;
        uint64_t skipped, read_errors, polls;
        struct board_led led;
        struct board_watchdog wd;
        char key_location[PATH_MAX];
};

/* hwmon channel kinds: <prefix><n>_input in the unit the kernel ABI gives, divided by div. */
static const struct hwmon_kind {
        const char *prefix;
        const char *quantity;
        int64_t div;
} hwmon_kinds[] = {
        {"temp", "temp", 1000},         /* m°C -> °C */
        {"in", "voltage", 1000},        /* mV -> V */
        {"curr", "current", 1000},      /* mA -> A */
        {"power", "power", 1000000},    /* µW -> W */
        {"fan", "fan", 1},              /* rpm */
        {"humidity", "humidity", 1000}, /* m%RH -> %RH */
};

static void linux_free(struct board_linux *b)
{
        if (!b)
                return;
        board_led_close(&b->led);
        board_watchdog_close(&b->wd, false);
        for (size_t i = 0; i < b->n_chans; i++)
                close(b->chans[i].fd);
        floe_free(b->chans);
        floe_free(b);
}

static void linux_freep(struct board_linux **b)
{
        linux_free(*b);
}

static int read_int(int fd, int64_t *ret)
{
        char buf[32];
        ssize_t n;

        do
                n = pread(fd, buf, sizeof(buf) - 1, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                n--;
        buf[n] = '\0';
        return floe_parse_int64(buf, ret);
}

static bool chan_exists(const struct board_linux *b, size_t from, const char *sensor,
                        const char *metric)
{
        for (size_t i = from; i < b->n_chans; i++)
                if (strcmp(b->chans[i].sensor, sensor) == 0 &&
                    (!metric || strcmp(b->chans[i].metric, metric) == 0))
                        return true;
        return false;
}

/* Opens and test-reads one sensor file; anything unusable is skipped and counted. */
static int chan_add(struct board_linux *b, const char *path, const struct chan *tmpl)
{
        struct stat st;
        int64_t raw;
        int fd;

        if (b->n_chans >= b->set.max_sensors || chan_exists(b, 0, tmpl->sensor, tmpl->metric))
                goto skip;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                goto skip;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || read_int(fd, &raw) < 0) {
                close(fd);
                goto skip;
        }
        if (b->n_chans == b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 16;
                struct chan *c = floe_reallocarray(b->chans, cap, sizeof(*c));

                if (!c) {
                        close(fd);
                        return -ENOMEM;
                }
                b->chans = c;
                b->cap = cap;
        }
        b->chans[b->n_chans] = *tmpl;
        b->chans[b->n_chans].fd = fd;
        b->chans[b->n_chans].sensor_len = strlen(tmpl->sensor);
        b->chans[b->n_chans].metric_len = strlen(tmpl->metric);
        b->n_chans++;
        return 0;
skip:
        b->skipped++;
        return 0;
}

static bool has_prefix_num(const char *s, const char *prefix)
{
        size_t n = strlen(prefix);

        return strncmp(s, prefix, n) == 0 && s[n] >= '0' && s[n] <= '9';
}

static int filter_hwmon(const struct dirent *d)
{
        return has_prefix_num(d->d_name, "hwmon");
}

static int filter_thermal(const struct dirent *d)
{
        return has_prefix_num(d->d_name, "thermal_zone");
}

static int filter_iio(const struct dirent *d)
{
        return has_prefix_num(d->d_name, "iio:device");
}

static int filter_visible(const struct dirent *d)
{
        return d->d_name[0] != '.';
}

struct dir_list {
        struct dirent **e;
        int n;
};

static void dir_list_done(struct dir_list *l)
{
        for (int i = 0; i < l->n; i++)
                free(l->e[i]);
        free(l->e);
        l->e = NULL;
        l->n = 0;
}

/* Entries in natural order (hwmon2 before hwmon10). A missing directory is empty; an
 * unreadable one too, counted as skipped. */
static int dir_list(struct board_linux *b, const char *path, int (*filter)(const struct dirent *),
                    struct dir_list *ret)
{
        struct dirent **e = NULL;
        int n = scandir(path, &e, filter, versionsort);

        if (n < 0) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                if (errno != ENOENT && errno != ENOTDIR)
                        b->skipped++;
                e = NULL;
                n = 0;
        }
        ret->e = e;
        ret->n = n;
        return 0;
}

/* <dir>/<name>, or "" when that does not fit. */
static void path_in(char *buf, size_t size, const char *dir, const char *name)
{
        if (board_path_join(buf, size, dir, name) < 0)
                buf[0] = '\0';
}

/* Sanitised contents of <dir>/<file>, else the sanitised fallback. */
static void read_name(const char *dir, const char *file, const char *fallback, char *buf,
                      size_t size)
{
        char path[PATH_MAX], text[256];

        path_in(path, sizeof(path), dir, file);
        if (board_read_text(path, text, sizeof(text)) < 0 ||
            board_name_sanitize(text, buf, size) == 0)
                board_name_sanitize(fallback, buf, size);
}

/* base, or base-2, base-3, ... if a sensor of this class (from index from on) has it. */
static void unique_sensor(const struct board_linux *b, size_t from, const char *base, char *buf,
                          size_t size)
{
        snprintf(buf, size, "%s", base);
        for (unsigned k = 2; chan_exists(b, from, buf, NULL) && k < 1000; k++) {
                char suffix[8];
                int n = snprintf(suffix, sizeof(suffix), "-%u", k);
                size_t keep = strlen(base);

                if (keep + (size_t)n >= size)
                        keep = size - 1 - (size_t)n;
                snprintf(buf, size, "%.*s%s", (int)keep, base, suffix);
        }
}

/* "<prefix><n>_input" -> the kind and n. */
static const struct hwmon_kind *hwmon_match(const char *name, char *num, size_t size)
{
        for (size_t i = 0; i < ELEMENTSOF(hwmon_kinds); i++) {
                size_t p = strlen(hwmon_kinds[i].prefix), d = 0;

                if (strncmp(name, hwmon_kinds[i].prefix, p) != 0)
                        continue;
                while (name[p + d] >= '0' && name[p + d] <= '9')
                        d++;
                if (d == 0 || d >= size || strcmp(name + p + d, "_input") != 0)
                        continue;
                memcpy(num, name + p, d);
                num[d] = '\0';
                return &hwmon_kinds[i];
        }
        return NULL;
}

static int scan_hwmon_chip(struct board_linux *b, const char *dir, const char *dirname,
                           size_t class_from)
{
        struct dir_list files = {0};
        char base[BOARD_NAME_MAX];
        struct chan c = {.div = 1};
        size_t chip_from = b->n_chans;
        int r;

        read_name(dir, "name", dirname, base, sizeof(base));
        unique_sensor(b, class_from, base, c.sensor, sizeof(c.sensor));
        r = dir_list(b, dir, filter_visible, &files);
        if (r < 0)
                return r;
        for (int i = 0; i < files.n && r >= 0; i++) {
                const char *f = files.e[i]->d_name;
                /* room for "humidity." before the label */
                char num[16], lfile[64], label[BOARD_NAME_MAX - 10], path[PATH_MAX];
                const struct hwmon_kind *k = hwmon_match(f, num, sizeof(num));

                if (!k)
                        continue;
                snprintf(lfile, sizeof(lfile), "%s%s_label", k->prefix, num);
                read_name(dir, lfile, "", label, sizeof(label));
                if (snprintf(c.metric, sizeof(c.metric), "%s.%s", k->quantity,
                             label[0] ? label : num) < 0 ||
                    chan_exists(b, chip_from, c.sensor, c.metric))
                        snprintf(c.metric, sizeof(c.metric), "%s.%s", k->quantity, num);
                c.div = k->div;
                path_in(path, sizeof(path), dir, f);
                r = chan_add(b, path, &c);
        }
        dir_list_done(&files);
        return r;
}

static int scan_hwmon(struct board_linux *b, const char *root)
{
        struct dir_list chips = {0};
        char base[PATH_MAX];
        size_t from = b->n_chans;
        int r;

        r = board_path_join(base, sizeof(base), root, "sys/class/hwmon");
        if (r >= 0)
                r = dir_list(b, base, filter_hwmon, &chips);
        for (int i = 0; i < chips.n && r >= 0; i++) {
                char dir[PATH_MAX], dev[PATH_MAX], file[PATH_MAX];

                path_in(dir, sizeof(dir), base, chips.e[i]->d_name);
                path_in(dev, sizeof(dev), dir, "device");
                /* Older drivers keep name and attributes in hwmon<n>/device. */
                path_in(file, sizeof(file), dir, "name");
                if (access(file, F_OK) < 0) {
                        path_in(file, sizeof(file), dev, "name");
                        if (access(file, F_OK) == 0)
                                memcpy(dir, dev, sizeof(dir));
                }
                r = scan_hwmon_chip(b, dir, chips.e[i]->d_name, from);
        }
        dir_list_done(&chips);
        return r;
}

static int scan_thermal(struct board_linux *b, const char *root)
{
        struct dir_list zones = {0};
        char base[PATH_MAX];
        size_t from = b->n_chans;
        int r;

        r = board_path_join(base, sizeof(base), root, "sys/class/thermal");
        if (r >= 0)
                r = dir_list(b, base, filter_thermal, &zones);
        for (int i = 0; i < zones.n && r >= 0; i++) {
                const char *z = zones.e[i]->d_name;
                struct chan c = {.div = 1000};
                char dir[PATH_MAX], path[PATH_MAX], name[BOARD_NAME_MAX];

                path_in(dir, sizeof(dir), base, z);
                if (strcmp(z, "thermal_zone0") == 0 && b->profile->thermal0_sensor)
                        snprintf(name, sizeof(name), "%s", b->profile->thermal0_sensor);
                else
                        read_name(dir, "type", z, name, sizeof(name));
                unique_sensor(b, from, name, c.sensor, sizeof(c.sensor));
                snprintf(c.metric, sizeof(c.metric), "temp");
                path_in(path, sizeof(path), dir, "temp");
                r = chan_add(b, path, &c);
        }
        dir_list_done(&zones);
        return r;
}

/* in_<chan>_<attr>, falling back to in_<type>_<attr> (shared by the channels of a type). */
static int iio_attr(const char *dir, const char *chan, size_t type_len, const char *attr,
                    double def, double *ret)
{
        char path[PATH_MAX], file[192], text[64];
        int r;

        for (int shared = 0; shared < 2; shared++) {
                int n = shared ? snprintf(file, sizeof(file), "in_%.*s_%s", (int)type_len, chan,
                                          attr)
                               : snprintf(file, sizeof(file), "in_%s_%s", chan, attr);

                if (n < 0 || (size_t)n >= sizeof(file))
                        return -ENAMETOOLONG;
                path_in(path, sizeof(path), dir, file);
                r = board_read_text(path, text, sizeof(text));
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                return floe_parse_double(text, ret);
        }
        *ret = def;
        return 0;
}

static int scan_iio_device(struct board_linux *b, const char *dir, const char *dirname,
                           size_t class_from)
{
        struct dir_list files = {0};
        char base[BOARD_NAME_MAX];
        struct chan c = {.iio = true};
        int r;

        read_name(dir, "name", dirname, base, sizeof(base));
        unique_sensor(b, class_from, base, c.sensor, sizeof(c.sensor));
        r = dir_list(b, dir, filter_visible, &files);
        if (r < 0)
                return r;
        for (int i = 0; i < files.n && r >= 0; i++) {
                const char *f = files.e[i]->d_name;
                size_t len = strlen(f), type_len = 0;
                char chan[BOARD_NAME_MAX], path[PATH_MAX];

                if (len <= 7 || strncmp(f, "in_", 3) != 0 || strcmp(f + len - 4, "_raw") != 0 ||
                    len - 7 >= sizeof(chan))
                        continue;
                memcpy(chan, f + 3, len - 7);
                chan[len - 7] = '\0';
                while (chan[type_len] >= 'a' && chan[type_len] <= 'z')
                        type_len++;
                if (iio_attr(dir, chan, type_len, "scale", 1.0, &c.scale) < 0 ||
                    iio_attr(dir, chan, type_len, "offset", 0.0, &c.offset) < 0 ||
                    board_name_sanitize(chan, c.metric, sizeof(c.metric)) == 0) {
                        b->skipped++;
                        continue;
                }
                path_in(path, sizeof(path), dir, f);
                r = chan_add(b, path, &c);
        }
        dir_list_done(&files);
        return r;
}

static int scan_iio(struct board_linux *b, const char *root)
{
        struct dir_list devs = {0};
        char base[PATH_MAX];
        size_t from = b->n_chans;
        int r;

        r = board_path_join(base, sizeof(base), root, "sys/bus/iio/devices");
        if (r >= 0)
                r = dir_list(b, base, filter_iio, &devs);
        for (int i = 0; i < devs.n && r >= 0; i++) {
                char dir[PATH_MAX];

                path_in(dir, sizeof(dir), base, devs.e[i]->d_name);
                r = scan_iio_device(b, dir, devs.e[i]->d_name, from);
        }
        dir_list_done(&devs);
        return r;
}

static int check_dir(const struct floe_config *cfg, const char *section, const char *path,
                     struct floe_config_error *err)
{
        struct stat st;
        int r = 0;

        if (stat(path, &st) < 0)
                r = -errno;
        else if (!S_ISDIR(st.st_mode))
                r = -ENOTDIR;
        if (r < 0)
                return floe_config_key_error(cfg, section, "sysfs_root", r, err, "%s: %s", path,
                                             strerror(-r));
        return 0;
}

static bool is_none(const char *s)
{
        return s[0] == '\0' || strcmp(s, "none") == 0;
}

static bool is_set(const struct floe_config *cfg, const char *section, const char *key)
{
        return floe_config_locate(cfg, section, key, NULL, NULL) == 0;
}

static int setup_led(struct board_linux *b, const struct floe_config *cfg, const char *section,
                     struct floe_config_error *err)
{
        const char *const one[] = {b->set.led, NULL};
        const char *const *names = strcmp(b->set.led, "auto") == 0 ? b->profile->auto_leds : one;
        char dir[PATH_MAX], rel[PATH_MAX];
        struct stat st;
        int r;

        if (is_none(b->set.led))
                return 0;
        if (strchr(b->set.led, '/') || b->set.led[0] == '.')
                return floe_config_key_error(cfg, section, "led", -EINVAL, err,
                                             "expected a name under /sys/class/leds, auto or none");
        for (size_t i = 0; names && names[i]; i++) {
                snprintf(rel, sizeof(rel), "sys/class/leds/%s", names[i]);
                r = board_path_join(dir, sizeof(dir), b->set.sysfs_root, rel);
                if (r >= 0 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
                        r = board_led_open(&b->led, dir);
                        /* auto: an LED this service may not drive (a read-only /sys under the
                         * unit's sandbox) is no reason to stop; a named one is */
                        if (r < 0 && names != one && (r == -EROFS || r == -EACCES || r == -EPERM))
                                return 0;
                        if (r < 0)
                                return floe_config_key_error(
                                        cfg, section, "led", r, err, "%s: %s%s", dir, strerror(-r),
                                        r == -EROFS || r == -EACCES || r == -EPERM
                                                ? " (the unit must allow writing it: "
                                                  "ReadWritePaths=/sys/class/leds/...)"
                                                : "");
                        return 0;
                }
                if (names == one)
                        return floe_config_key_error(cfg, section, "led", -ENOENT, err, "%s: %s",
                                                     dir, strerror(ENOENT));
        }
        return 0; /* auto and none present: no LED */
}

static int setup_watchdog(struct board_linux *b, const struct floe_config *cfg, const char *section,
                          struct floe_config_error *err)
{
        char path[PATH_MAX];
        int r;

        if (is_none(b->set.watchdog))
                return 0;
        r = board_path_join(path, sizeof(path), b->set.sysfs_root, b->set.watchdog);
        if (r < 0)
                return floe_config_key_error(cfg, section, "watchdog", r, err, "path too long");
        if (access(path, F_OK) < 0) {
                r = -errno;
                /* A default device that is absent means no watchdog; a configured one must exist.
                 */
                if (!is_set(cfg, section, "watchdog"))
                        return 0;
                return floe_config_key_error(cfg, section, "watchdog", r, err, "%s: %s", path,
                                             strerror(-r));
        }
        board_watchdog_init(&b->wd, path);
        b->wd.timeout_us = b->set.watchdog_timeout_us;
        return 0;
}

int board_linux_open(const struct board_linux_profile *p, const struct floe_config *cfg,
                     const char *section, void **ret_state, struct floe_config_error *err)
{
        _cleanup_(linux_freep) struct board_linux *b = NULL;
        char sys[PATH_MAX];
        int r;

        b = floe_calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->profile = p;
        board_watchdog_init(&b->wd, "");
        r = board_opts_load(p->opts, cfg, section, &b->set, err);
        if (r < 0)
                return r;
        if (b->set.identity[0] != '\0' && board_identity_check(b->set.identity) < 0)
                return floe_config_key_error(cfg, section, "identity", -EINVAL, err,
                                             "expected [a-z0-9][a-z0-9-]{0,62}, got \"%s\"",
                                             b->set.identity);
        r = check_dir(cfg, section, b->set.sysfs_root, err);
        if (r < 0)
                return r;
        r = board_path_join(sys, sizeof(sys), b->set.sysfs_root, "sys");
        if (r < 0)
                return floe_config_key_error(cfg, section, "sysfs_root", r, err, "too long");
        r = check_dir(cfg, section, sys, err);
        if (r < 0)
                return r;

        r = scan_hwmon(b, b->set.sysfs_root);
        if (r >= 0)
                r = scan_thermal(b, b->set.sysfs_root);
        if (r >= 0)
                r = scan_iio(b, b->set.sysfs_root);
        if (r < 0)
                return floe_config_key_error(cfg, section, "sysfs_root", r, err, "scanning %s: %s",
                                             sys, strerror(-r));

        r = setup_led(b, cfg, section, err);
        if (r < 0)
                return r;
        r = setup_watchdog(b, cfg, section, err);
        if (r < 0)
                return r;
        r = board_key_resolve(cfg, section, b->set.key, true, b->key_location,
                              sizeof(b->key_location), err);
        if (r < 0)
                return r;
        *ret_state = TAKE_PTR(b);
        return 0;
}

void board_linux_close(void *state)
{
        linux_free(state);
}

int board_linux_identity(void *state, char *buf, size_t size)
{
        const struct board_linux *b = state;
        const char *const *paths = b->profile->identity_paths;
        size_t n = strlen(b->set.identity);

        if (n > 0) {
                if (n >= size)
                        return -ENOBUFS;
                memcpy(buf, b->set.identity, n + 1);
                return 0;
        }
        for (size_t i = 0; paths && paths[i]; i++) {
                char path[PATH_MAX];
                int r = board_path_join(path, sizeof(path), b->set.sysfs_root, paths[i]);

                if (r >= 0)
                        r = board_identity_read(path, buf, size);
                if (r != -ENOENT)
                        return r;
        }
        return -ENOENT;
}

int board_linux_poll(void *state, int64_t now_us, agent_reading_fn fn, void *userdata)
{
        struct board_linux *b = state;

        b->polls++;
        for (size_t i = 0; i < b->n_chans; i++) {
                const struct chan *c = &b->chans[i];
                struct agent_reading rd = {
                        .sensor = c->sensor,
                        .sensor_len = c->sensor_len,
                        .metric = c->metric,
                        .metric_len = c->metric_len,
                        .ts_us = now_us,
                };
                int64_t raw;
                int r;

                if (read_int(c->fd, &raw) < 0) {
                        b->read_errors++;
                        continue;
                }
                rd.value = c->iio ? ((double)raw + c->offset) * c->scale
                                  : (double)raw / (double)c->div;
                r = fn(userdata, &rd);
                if (r < 0)
                        return r;
        }
        return 0;
}

uint64_t board_linux_poll_interval_us(void *state)
{
        const struct board_linux *b = state;

        return b->set.interval_us;
}

int board_linux_led_set(void *state, enum board_led_state s)
{
        struct board_linux *b = state;

        return board_led_set(&b->led, s);
}

int board_linux_watchdog_open(void *state)
{
        struct board_linux *b = state;

        return board_watchdog_open(&b->wd);
}

int board_linux_watchdog_kick(void *state)
{
        struct board_linux *b = state;

        return board_watchdog_kick(&b->wd);
}

void board_linux_watchdog_close(void *state, bool magic_close)
{
        struct board_linux *b = state;

        board_watchdog_close(&b->wd, magic_close);
}

int board_linux_key_location(void *state, char *buf, size_t size)
{
        const struct board_linux *b = state;
        size_t n = strlen(b->key_location);

        if (n >= size)
                return -ENOBUFS;
        memcpy(buf, b->key_location, n + 1);
        return 0;
}

int board_linux_stats(void *state, struct board_stats *ret)
{
        const struct board_linux *b = state;

        *ret = (struct board_stats){
                .sensors = b->n_chans,
                .skipped = b->skipped,
                .read_errors = b->read_errors,
                .polls = b->polls,
                .watchdog_kicks = b->wd.kicks,
                .watchdog_timeout_us = b->wd.fd >= 0 ? b->wd.timeout_us : 0,
        };
        return 0;
}

static const struct board_opt linux_generic_opts[] = {
        BOARD_LINUX_OPTS("none", "none"),
        {0},
};

static const char *const linux_generic_identity[] = {"etc/machine-id", NULL};

static const struct board_linux_profile linux_generic_profile = {
        .opts = linux_generic_opts,
        .identity_paths = linux_generic_identity,
        .auto_leds = NULL,
};

static int linux_generic_open(const struct floe_config *cfg, const char *section, void **ret_state,
                              struct floe_config_error *err)
{
        return board_linux_open(&linux_generic_profile, cfg, section, ret_state, err);
}

const struct board_ops board_linux_generic_ops = {
        .name = "linux-generic",
        .doc = "hwmon, thermal zones and IIO sensors of any Linux machine, /etc/machine-id",
        .opts = linux_generic_opts,
        .open = linux_generic_open,
        .close = board_linux_close,
        .identity = board_linux_identity,
        .poll = board_linux_poll,
        .poll_interval_us = board_linux_poll_interval_us,
        .led_set = board_linux_led_set,
        .watchdog_open = board_linux_watchdog_open,
        .watchdog_kick = board_linux_watchdog_kick,
        .watchdog_close = board_linux_watchdog_close,
        .key_location = board_linux_key_location,
        .stats = board_linux_stats,
};
