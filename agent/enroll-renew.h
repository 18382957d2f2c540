/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The device certificate over the agent's life, when [enroll] is configured
 * (docs/enrollment.md, "Device side"): at start, recovery of an interrupted
 * install and the check of the installed pair; enrollment by claim when it
 * is not usable (the uplink starts once a certificate is installed; ingest
 * goes on meanwhile); renewal over the uplink's own connection at
 * [enroll] renew_at of the lifetime plus jitter, the new pair staged and
 * tried, installed only once the broker has accepted it.
 */

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "floe-metrics.h"
#include "settings.h"
#include "uplink.h"

struct agent_renew_stats {
        const char *state;   /* enrolling, no-certificate, valid, renewing, switching */
        int64_t renew_at_us; /* next renewal, wall clock; 0 when none is planned */
        int64_t not_after;   /* of the certificate in use, Unix seconds; 0 none */
        char serial[72];
        uint64_t renewals;
        uint64_t renewal_failures;
        uint64_t enrollments;
        uint64_t enrollment_attempts;
        char last_error[264];
};

struct agent_renew;

/* s and u are borrowed and must outlive it; changed() is called when another
 * certificate was installed. */
int agent_renew_new(sd_event *e, const struct agent_settings *s, struct agent_uplink *u,
                    void (*changed)(void *ud), void *ud, struct agent_renew **ret);
struct agent_renew *agent_renew_free(struct agent_renew *r);

/* Starts the uplink, or enrollment first. */
int agent_renew_start(struct agent_renew *r);
/* SIGHUP: the files on disk again (a certificate from `floe-agent enroll`). */
void agent_renew_reload(struct agent_renew *r);

void agent_renew_stats(const struct agent_renew *r, struct agent_renew_stats *ret);
/* Appends ,"cert_state":...,"cert_renew_at_us":... to a status document. */
int agent_renew_status_json(const struct agent_renew *r, char *buf, size_t size);
void agent_renew_metrics(const struct agent_renew *r, struct floe_metrics *m);
