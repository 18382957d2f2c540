/* SPDX-License-Identifier: Apache-2.0 */
/* Table maintenance in a worker thread: compaction, tier moves, snapshot expiry, old metadata
 * files and orphan files, with the worker's own store and catalog; results to the loop by
 * eventfd. */
#include "maintain-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "ice-floe.h"
#include "ice-maint.h"
#include "ice-table.h"
#include "lake.h"
#include "store.h"

const char *upl_maint_task_name(enum upl_maint_task task)
{
        static const char *const names[_UPL_MAINT_TASKS] = {"compact", "expire", "metadata",
                                                            "orphans", "tier"};

        return task < _UPL_MAINT_TASKS ? names[task] : "?";
}

static void notify(struct upl_maint *m)
{
        uint64_t one = 1;

        /* a full counter (never: the loop reads it) is still readable */
        if (write(m->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
                return;
}

/* The tiers' roots beside the warehouse, for this run: files of a table may live under each. */
static int open_tiers(struct upl_maint *m)
{
        char why[400];
        int r;

        if (!m->tiers || m->tiers->n_tiers < 2)
                return 0;
        r = ice_tier_opts_open(&m->tier, m->tiers, m->lake.store, &m->conf->store, why,
                               sizeof(why));
        if (r < 0)
                snprintf(m->lake.why, sizeof(m->lake.why), "[tier] %s", why);
        return r;
}

static void run(struct upl_maint *m, const struct upl_maint_request *req)
{
        int r = upl_lake_open(&m->lake, m->conf);
        bool failed;

        if (r == 0)
                r = open_tiers(m);
        failed = r < 0;

        for (unsigned i = 0; i < UPL_TABLES; i++) {
                struct upl_maint_result res = {.table = i};

                if (r < 0) {
                        res.ran[UPL_MAINT_COMPACT] = true;
                        upl_maint_fail(&res, UPL_MAINT_COMPACT, r, m->lake.why);
                } else if (upl_maint_may(m, &res)) {
                        upl_maint_table(m, req, i, &res);
                }
                for (int k = 0; k < _UPL_MAINT_TASKS; k++)
                        failed = failed || res.error[k] < 0;
                pthread_mutex_lock(&m->mu);
                m->done[m->n_done++] = res;
                pthread_mutex_unlock(&m->mu);
                notify(m);
        }
        ice_tier_opts_close(&m->tier);
        m->tier = (struct ice_tier_opts){0};
        /* a broken connection is not kept: the next run opens the lake again */
        if (failed)
                upl_lake_close(&m->lake);
}

static void destroy(struct upl_maint *m)
{
        upl_lake_close(&m->lake);
        if (m->efd >= 0)
                close(m->efd);
        pthread_cond_destroy(&m->cv);
        pthread_mutex_destroy(&m->mu);
        floe_free(m);
}

static void *worker(void *arg)
{
        struct upl_maint *m = arg;
        bool alone;

        for (;;) {
                struct upl_maint_request req;

                pthread_mutex_lock(&m->mu);
                while (!m->have_req && !m->quit)
                        pthread_cond_wait(&m->cv, &m->mu);
                if (m->quit) {
                        pthread_mutex_unlock(&m->mu);
                        break;
                }
                req = m->req;
                m->have_req = false;
                pthread_mutex_unlock(&m->mu);
                run(m, &req);
                pthread_mutex_lock(&m->mu);
                m->run_over = true;
                pthread_mutex_unlock(&m->mu);
                notify(m);
        }
        upl_lake_close(&m->lake);
        pthread_mutex_lock(&m->mu);
        m->exited = true;
        alone = m->abandoned;
        pthread_mutex_unlock(&m->mu);
        if (alone) /* the loop gave up waiting: what is left is ours */
                destroy(m);
        return NULL;
}

/* -- the loop's side ------------------------------------------------------------------------ */

static int on_results(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
        struct upl_maint *m = ud;
        struct upl_maint_result got[UPL_TABLES];
        uint64_t v;
        size_t n;
        bool over;

        (void)s;
        (void)revents;
        if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                return 0;
        pthread_mutex_lock(&m->mu);
        n = m->n_done;
        memcpy(got, m->done, n * sizeof(*got));
        m->n_done = 0;
        over = m->run_over;
        m->run_over = false;
        pthread_mutex_unlock(&m->mu);
        for (size_t i = 0; i < n; i++)
                m->fn(m->ud, &got[i]);
        if (over) {
                m->busy = false;
                m->fn(m->ud, NULL);
        }
        return 0;
}

int upl_maint_new(sd_event *e, const struct lake_conf *conf, const struct ice_tier_conf *tiers,
                  upl_maint_fn fn, void *ud, struct upl_maint **ret)
{
        struct upl_maint *m = floe_calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        m->conf = conf;
        m->tiers = tiers;
        m->fn = fn;
        m->ud = ud;
        atomic_init(&m->stop, false);
        pthread_mutex_init(&m->mu, NULL);
        pthread_cond_init(&m->cv, NULL);
        m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (m->efd < 0) {
                r = -errno;
                destroy(m);
                return r;
        }
        r = sd_event_add_io(e, &m->io, m->efd, EPOLLIN, on_results, m);
        if (r < 0) {
                destroy(m);
                return r;
        }
        *ret = m;
        return 0;
}

bool upl_maint_busy(const struct upl_maint *m)
{
        return m && m->busy;
}

int upl_maint_post(struct upl_maint *m, const struct upl_maint_request *req)
{
        if (m->busy)
                return -EBUSY;
        if (upl_maint_stopping(m))
                return -ECANCELED;
        if (!m->started) {
                sigset_t all, old;
                int r;

                /* signals stay with the loop's signalfd */
                sigfillset(&all);
                pthread_sigmask(SIG_BLOCK, &all, &old);
                r = pthread_create(&m->th, NULL, worker, m);
                pthread_sigmask(SIG_SETMASK, &old, NULL);
                if (r != 0)
                        return -r;
                m->started = true;
        }
        pthread_mutex_lock(&m->mu);
        m->req = *req;
        m->have_req = true;
        pthread_cond_signal(&m->cv);
        pthread_mutex_unlock(&m->mu);
        m->busy = true;
        return 0;
}

void upl_maint_stop(struct upl_maint *m)
{
        if (m)
                atomic_store(&m->stop, true);
}

struct upl_maint *upl_maint_free(struct upl_maint *m, uint64_t wait_us)
{
        struct timespec deadline;
        int r;

        if (!m)
                return NULL;
        m->io = sd_event_source_disable_unref(m->io);
        if (m->started) {
                atomic_store(&m->stop, true);
                pthread_mutex_lock(&m->mu);
                m->quit = true;
                pthread_cond_signal(&m->cv);
                pthread_mutex_unlock(&m->mu);
                clock_gettime(CLOCK_REALTIME, &deadline);
                deadline.tv_sec += (time_t)(wait_us / 1000000);
                deadline.tv_nsec += (long)(wait_us % 1000000) * 1000;
                if (deadline.tv_nsec >= 1000000000) {
                        deadline.tv_sec++;
                        deadline.tv_nsec -= 1000000000;
                }
                r = pthread_timedjoin_np(m->th, NULL, &deadline);
                if (r == ETIMEDOUT) {
                        pthread_mutex_lock(&m->mu);
                        if (!m->exited) {
                                m->abandoned = true;
                                pthread_mutex_unlock(&m->mu);
                                pthread_detach(m->th);
                                return NULL;
                        }
                        pthread_mutex_unlock(&m->mu);
                        pthread_join(m->th, NULL);
                }
        }
        destroy(m);
        return NULL;
}
