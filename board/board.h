/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Board support: where a gateway's own sensors, identity, status LED,
 * hardware watchdog and device key live. One const struct board_ops per
 * board plus a declarative option table (the Fluent Bit plugin model);
 * the agent picks one by name and drives it. docs/boards.md describes what
 * each board reads and its [board.<name>] keys.
 *
 * Memory: open() allocates everything a board needs; poll(), led_set() and
 * the watchdog calls never allocate.
 */

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "floe-config.h"
#include "reading.h"

/* Sensor and metric names a board emits are shorter than this (NUL included). */
#define BOARD_NAME_MAX 64
/* An identity part: [a-z0-9][a-z0-9-]{0,62}, plus the NUL. */
#define BOARD_IDENTITY_MAX 64
/* Default of [agent] state_dir, where the device key lives unless configured. */
#define BOARD_STATE_DIR_DEFAULT "/var/lib/floe"

enum board_led_state {
        BOARD_LED_OFF,
        BOARD_LED_OK,    /* on */
        BOARD_LED_BUSY,  /* inverts the LED: a blink when followed by OK */
        BOARD_LED_ERROR, /* fast blink */
        _BOARD_LED_MAX,
};

struct board_stats {
        uint64_t sensors; /* readings a poll emits when every read succeeds */
        uint64_t skipped; /* sensor files found at open but unusable (missing, unreadable, bad) */
        uint64_t read_errors; /* failed or malformed reads during polls, in total */
        uint64_t polls;
        uint64_t watchdog_kicks;
        uint64_t watchdog_timeout_us; /* as the driver reports it; 0: unknown or no watchdog */
};

/* Declarative option table: a board's keys, their types, defaults and where they go. */
enum board_opt_type {
        BOARD_OPT_STRING,   /* copied into a char[size] */
        BOARD_OPT_UINT,     /* uint64_t in [min, max] */
        BOARD_OPT_DURATION, /* uint64_t µs in [min, max], written like "1s" or "500ms" */
};

struct board_opt {
        const char *key; /* NULL ends a table */
        enum board_opt_type type;
        const char *def; /* default as it would be written in the file */
        uint64_t min, max;
        size_t offset; /* of the field in the board's settings struct */
        size_t size;   /* BOARD_OPT_STRING: size of the char array */
        const char *doc;
};

#define BOARD_OPT_STR(k, d, st, field, text)                                                     \
        {                                                                                        \
                .key = (k), .type = BOARD_OPT_STRING, .def = (d), .offset = offsetof(st, field), \
                .size = sizeof(((st *)0)->field), .doc = (text)                                  \
        }
#define BOARD_OPT_NUM(k, t, d, lo, hi, st, field, text)                                \
        {                                                                              \
                .key = (k), .type = (t), .def = (d), .min = (lo), .max = (hi),         \
                .offset = offsetof(st, field), .size = sizeof(uint64_t), .doc = (text) \
        }

struct board_ops {
        const char *name;
        const char *doc;              /* one line */
        const struct board_opt *opts; /* keys of [board.<name>] */

        /* Reads its keys from section (unknown keys are errors), allocates all its memory. */
        int (*open)(const struct floe_config *cfg, const char *section, void **ret_state,
                    struct floe_config_error *err);
        void (*close)(void *state); /* NULL is fine */
        /* The board's serial as an identity part; -ENOENT if it has none, -ENOBUFS if
         * size is too small; buf is written only on success. */
        int (*identity)(void *state, char *buf, size_t size);
        /* Reads every sensor once, emits readings with ts_us = now_us. Stops at and
         * returns the first negative return of fn. */
        int (*poll)(void *state, int64_t now_us, agent_reading_fn fn, void *userdata);
        uint64_t (*poll_interval_us)(void *state);
        int (*led_set)(void *state, enum board_led_state s);
        /* Without a configured watchdog these do nothing and return 0. */
        int (*watchdog_open)(void *state);
        int (*watchdog_kick)(void *state);
        /* magic_close: tell the driver this is a clean stop ('V'), so it disarms. */
        void (*watchdog_close)(void *state, bool magic_close);
        /* A file path, or a TPM handle URI "handle:0x81xxxxxx". */
        int (*key_location)(void *state, char *buf, size_t size);
        int (*stats)(void *state, struct board_stats *ret);
};

/* NULL if there is no such board. */
const struct board_ops *board_find(const char *name);
/* The i-th board in registry order, NULL past the end. */
const struct board_ops *board_at(size_t i);
/* "board.<name>" into buf; -ENOBUFS if it does not fit. */
int board_section(const struct board_ops *b, char *buf, size_t size);

extern const struct board_ops board_sim_ops;
extern const struct board_ops board_linux_generic_ops;
extern const struct board_ops board_rpi_ops;

/*
 * sim extras for tests and bench. emit_burst emits n readings as fast as
 * possible, cycling over the series and stepping the walk once per round as
 * a poll would; reading k gets ts_us + k * step_us. No allocation.
 */
int board_sim_emit_burst(void *state, uint64_t n, int64_t ts_us, int64_t step_us,
                         agent_reading_fn fn, void *userdata);
enum board_led_state board_sim_led(void *state);

/*
 * Implementation support, shared by the boards in board/; not for the agent.
 */

/* Loads opts from section into settings; a key of section not in opts is -EINVAL. */
int board_opts_load(const struct board_opt *opts, const struct floe_config *cfg,
                    const char *section, void *settings, struct floe_config_error *err);
/* 0 if s matches [a-z0-9][a-z0-9-]{0,62}, else -EINVAL. */
int board_identity_check(const char *s);
/* Reads an identity from a file (a machine-id or a device-tree serial): trailing
 * NULs and white space stripped, lower-cased, validated. -ENOENT if missing. */
int board_identity_read(const char *path, char *buf, size_t size);
/* root + "/" + rel without a doubled slash; -ENAMETOOLONG if it does not fit. */
int board_path_join(char *buf, size_t size, const char *root, const char *rel);
/* Reads a small text file into buf (NUL-terminated, trailing white space cut). */
int board_read_text(const char *path, char *buf, size_t size);
/* Writes text to a sysfs attribute (open, write, close). */
int board_write_text(const char *path, const char *text);
/* Copies s into buf lower-cased, runs of other than [a-z0-9_.-] as one '-', trimmed
 * of '-'. Returns the length; 0 if nothing is left. */
size_t board_name_sanitize(const char *s, char *buf, size_t size);

/* The device key: `key` from the board's section, else <[agent] state_dir>/device.key. */
int board_key_resolve(const struct floe_config *cfg, const char *section, const char *key,
                      bool allow_handle, char *buf, size_t size, struct floe_config_error *err);

/* A LED class device (<dir>/brightness, trigger, delay_on, delay_off). */
struct board_led {
        bool present;
        bool lit;
        enum board_led_state state;
        char brightness_on[16];
        char saved_trigger[64];
        char saved_brightness[16];
        char dir[PATH_MAX];
};
/* Sets the trigger to "none", remembering the old trigger and brightness. */
int board_led_open(struct board_led *led, const char *dir);
int board_led_set(struct board_led *led, enum board_led_state s);
/* Puts the remembered trigger and brightness back. */
void board_led_close(struct board_led *led);

/* A watchdog device (or, in tests, a regular file or FIFO). */
struct board_watchdog {
        int fd; /* -1: closed */
        uint64_t timeout_us;
        uint64_t kicks;
        char path[PATH_MAX]; /* "": none configured */
};
void board_watchdog_init(struct board_watchdog *wd, const char *path);
int board_watchdog_open(struct board_watchdog *wd);
int board_watchdog_kick(struct board_watchdog *wd);
void board_watchdog_close(struct board_watchdog *wd, bool magic_close);

/* linux-generic and rpi share one implementation, parameterised by a profile. */
struct board_linux_settings {
        uint64_t interval_us;
        uint64_t max_sensors;
        uint64_t watchdog_timeout_us;
        char sysfs_root[PATH_MAX];
        char identity[BOARD_IDENTITY_MAX];
        char led[BOARD_NAME_MAX];
        char watchdog[PATH_MAX];
        char key[PATH_MAX];
};

/* The option rows of linux-generic and rpi; they differ in defaults only. */
#define BOARD_LINUX_OPTS(led_def, watchdog_def)                                                   \
        BOARD_OPT_STR("sysfs_root", "/", struct board_linux_settings, sysfs_root,                 \
                      "prefix of /sys, /proc, /etc and /dev (tests point it at a fixture)"),      \
                BOARD_OPT_NUM("interval", BOARD_OPT_DURATION, "10s", 10000, UINT64_C(3600000000), \
                              struct board_linux_settings, interval_us, "time between polls"),    \
                BOARD_OPT_NUM("max_sensors", BOARD_OPT_UINT, "1024", 1, 65536,                    \
                              struct board_linux_settings, max_sensors,                           \
                              "sensor files kept open at most; the rest are skipped"),            \
                BOARD_OPT_STR("identity", "", struct board_linux_settings, identity,              \
                              "board serial to report instead of the one read from the system"),  \
                BOARD_OPT_STR("led", led_def, struct board_linux_settings, led,                   \
                              "status LED under sys/class/leds: a name, auto or none"),           \
                BOARD_OPT_STR("watchdog", watchdog_def, struct board_linux_settings, watchdog,    \
                              "watchdog device under the root, or none"),                         \
                BOARD_OPT_NUM("watchdog_timeout", BOARD_OPT_DURATION, "0", 0,                     \
                              UINT64_C(3600000000), struct board_linux_settings,                  \
                              watchdog_timeout_us,                                                \
                              "timeout to set on the watchdog; 0: the driver's"),                 \
                BOARD_OPT_STR(                                                                    \
                        "key", "", struct board_linux_settings, key,                              \
                        "device key file or handle:0x81xxxxxx; empty: <state_dir>/device.key")

struct board_linux_profile {
        const struct board_opt *opts;
        const char *const *identity_paths; /* under the root, the first present wins */
        const char *const *auto_leds;      /* what led = auto tries under sys/class/leds */
        const char *thermal0_sensor;       /* sensor name of thermal_zone0; NULL: its type */
};

int board_linux_open(const struct board_linux_profile *p, const struct floe_config *cfg,
                     const char *section, void **ret_state, struct floe_config_error *err);
void board_linux_close(void *state);
int board_linux_identity(void *state, char *buf, size_t size);
int board_linux_poll(void *state, int64_t now_us, agent_reading_fn fn, void *userdata);
uint64_t board_linux_poll_interval_us(void *state);
int board_linux_led_set(void *state, enum board_led_state s);
int board_linux_watchdog_open(void *state);
int board_linux_watchdog_kick(void *state);
void board_linux_watchdog_close(void *state, bool magic_close);
int board_linux_key_location(void *state, char *buf, size_t size);
int board_linux_stats(void *state, struct board_stats *ret);
