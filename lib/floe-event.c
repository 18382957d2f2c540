/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-event.h"
#include "floe-alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#define ELLIPSIS     "\xe2\x80\xa6" /* U+2026 */
#define ELLIPSIS_LEN (sizeof(ELLIPSIS) - 1)

int floe_event_new(sd_event **ret)
{
        sd_event *e = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        r = sd_event_default(&e);
        if (r < 0)
                return r;
        *ret = e;
        return 0;
}

struct signal_ctx {
        int (*cb)(void *userdata);
        void *userdata;
        bool terminate;
};

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct signal_ctx *c = userdata;
        sd_event *e = sd_event_source_get_event(s);
        int r = 0;

        (void)si;
        if (c->cb)
                r = c->cb(c->userdata);
        /* Returning an error would only disable this source; end the loop instead. */
        if (r < 0)
                (void)sd_event_exit(e, r);
        else if (c->terminate && r != FLOE_EVENT_TERMINATE_DEFER)
                (void)sd_event_exit(e, 0);
        return 0;
}

static int add_signal(sd_event *e, int sig, int (*cb)(void *), void *userdata, bool terminate,
                      sd_event_source **ret)
{
        _cleanup_free_ struct signal_ctx *c = NULL;
        sd_event_source *s = NULL;
        int r;

        c = floe_malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (struct signal_ctx){.cb = cb, .userdata = userdata, .terminate = terminate};

        r = sd_event_add_signal(e, &s, sig, on_signal, c);
        if (r < 0)
                return r;
        r = sd_event_source_set_destroy_callback(s, floe_free);
        if (r < 0) {
                sd_event_source_unref(s);
                return r;
        }
        TAKE_PTR(c);
        *ret = s;
        return 0;
}

int floe_event_install_signals(sd_event *e, const struct floe_event_handlers *handlers)
{
        static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
        struct floe_event_handlers h = {0};
        sd_event_source *src[ELEMENTSOF(sigs)] = {0};
        sigset_t mask, old;
        size_t i;
        int r = 0;

        if (!e)
                return -EINVAL;
        if (handlers)
                h = *handlers;

        sigemptyset(&mask);
        for (i = 0; i < ELEMENTSOF(sigs); i++)
                sigaddset(&mask, sigs[i]);
        /* sd_event_add_signal() needs them blocked; SD_EVENT_SIGNAL_PROCMASK is not relied on. */
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
                return -errno;

        for (i = 0; i < ELEMENTSOF(sigs) && r >= 0; i++) {
                bool term = sigs[i] != SIGHUP;

                r = add_signal(e, sigs[i], term ? h.on_terminate : h.on_reload, h.userdata, term,
                               &src[i]);
        }
        /* Hand the sources to the loop only once all of them exist. */
        for (i = 0; i < ELEMENTSOF(sigs) && r >= 0; i++) {
                r = sd_event_source_set_floating(src[i], true);
                if (r < 0)
                        while (i-- > 0)
                                (void)sd_event_source_set_floating(src[i], false);
        }
        for (i = 0; i < ELEMENTSOF(sigs); i++)
                sd_event_source_unref(src[i]);
        if (r < 0) {
                (void)sigprocmask(SIG_SETMASK, &old, NULL);
                return r;
        }
        return 0;
}

int floe_event_enable_watchdog(sd_event *e, bool *ret_active)
{
        int r;

        if (!e)
                return -EINVAL;
        r = sd_event_set_watchdog(e, true);
        if (r < 0)
                return r;
        if (ret_active)
                *ret_active = r > 0;
        return 0;
}

int floe_event_add_timer(sd_event *e, uint64_t usec, uint64_t accuracy, sd_event_time_handler_t cb,
                         void *userdata, sd_event_source **ret)
{
        int r;

        if (!e)
                return -EINVAL;
        r = sd_event_add_time_relative(e, ret, CLOCK_MONOTONIC, usec, accuracy, cb, userdata);
        return r < 0 ? r : 0;
}

struct periodic {
        sd_event_time_handler_t cb;
        void *userdata;
        uint64_t interval;
        uint64_t jitter;
        uint64_t base; /* un-jittered time of the tick now pending */
        uint64_t rng;
};

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* splitmix64: jitter only needs to differ between gateways, not be secret. */
static uint64_t periodic_jitter(struct periodic *p)
{
        uint64_t z;

        if (p->jitter == 0)
                return 0;
        p->rng += UINT64_C(0x9e3779b97f4a7c15);
        z = p->rng;
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        z ^= z >> 31;
        return p->jitter == UINT64_MAX ? z : z % (p->jitter + 1);
}

static uint64_t random_seed(const void *salt)
{
        uint64_t seed = 0;
        struct timespec ts = {0};

        if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
                return seed;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)salt;
}

static int on_periodic(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct periodic *p = userdata;
        uint64_t now, next;
        int r;

        r = sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        next = add_sat(p->base, p->interval);
        if (next < now && next != UINT64_MAX)
                next = add_sat(next, ((now - next) / p->interval + 1) * p->interval);
        p->base = next;

        /* Re-arm before the callback so that it can still switch the source off. */
        r = sd_event_source_set_time(s, add_sat(next, periodic_jitter(p)));
        if (r < 0)
                return r;
        r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        if (r < 0)
                return r;
        return p->cb(s, usec, p->userdata);
}

int floe_event_add_periodic_full(sd_event *e, uint64_t interval_usec, uint64_t jitter_usec,
                                 uint64_t accuracy, sd_event_time_handler_t cb, void *userdata,
                                 sd_event_source **ret)
{
        _cleanup_free_ struct periodic *p = NULL;
        sd_event_source *s = NULL;
        uint64_t now;
        int r;

        if (!e || !cb || interval_usec == 0)
                return -EINVAL;
        r = sd_event_now(e, CLOCK_MONOTONIC, &now);
        if (r < 0)
                return r;
        p = floe_malloc(sizeof(*p));
        if (!p)
                return -ENOMEM;
        *p = (struct periodic){
                .cb = cb,
                .userdata = userdata,
                .interval = interval_usec,
                .jitter = jitter_usec,
                .base = add_sat(now, interval_usec),
        };
        p->rng = random_seed(p);

        r = sd_event_add_time(e, &s, CLOCK_MONOTONIC, add_sat(p->base, periodic_jitter(p)),
                              accuracy, on_periodic, p);
        if (r < 0)
                return r;
        r = sd_event_source_set_destroy_callback(s, floe_free);
        if (r < 0) {
                sd_event_source_unref(s);
                return r;
        }
        TAKE_PTR(p);

        if (ret) {
                *ret = s;
                return 0;
        }
        r = sd_event_source_set_floating(s, true);
        sd_event_source_unref(s);
        return r < 0 ? r : 0;
}

int floe_event_add_periodic(sd_event *e, uint64_t interval_usec, uint64_t accuracy,
                            sd_event_time_handler_t cb, void *userdata, sd_event_source **ret)
{
        return floe_event_add_periodic_full(e, interval_usec, 0, accuracy, cb, userdata, ret);
}

static bool notify_wanted(void)
{
        const char *e = getenv("NOTIFY_SOCKET");

        return e && *e;
}

static int notify(const char *msg)
{
        int r = sd_notify(0, msg);

        return r < 0 ? r : 0;
}

/* STATUS= is one line of at most FLOE_NOTIFY_STATUS_MAX bytes: a newline
 * would start another assignment (READY=1, MAINPID=...). */
static void status_text(char buf[static FLOE_NOTIFY_STATUS_MAX + 1], const char *format, va_list ap)
{
        int n = vsnprintf(buf, FLOE_NOTIFY_STATUS_MAX + 1, format, ap);
        size_t len;

        if (n < 0) {
                buf[0] = '\0';
                return;
        }
        len = (size_t)n;
        if (len > FLOE_NOTIFY_STATUS_MAX) {
                len = FLOE_NOTIFY_STATUS_MAX - ELLIPSIS_LEN;
                while (len > 0 && ((unsigned char)buf[len] & 0xc0) == 0x80)
                        len--;
                memcpy(buf + len, ELLIPSIS, ELLIPSIS_LEN);
                len += ELLIPSIS_LEN;
                buf[len] = '\0';
        }
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)buf[i] < ' ' || buf[i] == 0x7f)
                        buf[i] = ' ';
}

static void status_textf(char buf[static FLOE_NOTIFY_STATUS_MAX + 1], const char *format, ...)
        __attribute__((format(printf, 2, 3)));

static void status_textf(char buf[static FLOE_NOTIFY_STATUS_MAX + 1], const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        status_text(buf, format, ap);
        va_end(ap);
}

static int notify_status_line(const char *head, const char *text)
{
        char msg[32 + FLOE_NOTIFY_STATUS_MAX];

        snprintf(msg, sizeof(msg), "%sSTATUS=%s", head, text);
        return notify(msg);
}

int floe_notify_ready(const char *status)
{
        char text[FLOE_NOTIFY_STATUS_MAX + 1];

        if (!notify_wanted())
                return 0;
        if (!status)
                return notify("READY=1");
        status_textf(text, "%s", status);
        return notify_status_line("READY=1\n", text);
}

int floe_notify_status(const char *format, ...)
{
        char text[FLOE_NOTIFY_STATUS_MAX + 1];
        va_list ap;

        if (!notify_wanted())
                return 0;
        va_start(ap, format);
        status_text(text, format, ap);
        va_end(ap);
        return notify_status_line("", text);
}

int floe_notify_reloading(void)
{
        char msg[64];
        struct timespec ts;

        if (!notify_wanted())
                return 0;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return -errno;
        snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%" PRIu64,
                 (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
        return notify(msg);
}

int floe_notify_stopping(void)
{
        if (!notify_wanted())
                return 0;
        return notify("STOPPING=1");
}

int floe_notify_extend_timeout(uint64_t usec)
{
        char msg[64];

        if (!notify_wanted())
                return 0;
        snprintf(msg, sizeof(msg), "EXTEND_TIMEOUT_USEC=%" PRIu64, usec);
        return notify(msg);
}
