/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <limits.h>
#include <stdint.h>

#include "enroll-service.h"
#include "floe-config.h"

/* floe-enrolld's configuration (docs/enrollment.md, "Configuration"). */

#define ENROLL_CONFIG_DEFAULT "/etc/floe/enrolld.conf"
#define ENROLL_CA_DIR_DEFAULT "/var/lib/floe-ca"

struct enroll_settings {
        /* [enrolld] */
        const char *ca_dir;
        const char *ca_config; /* NULL: DIR/floe-ca.conf */
        /* [broker] */
        const char *host;
        int64_t port;
        const char *ca_file, *cert_file, *key_file; /* defaults under ca_dir */
        const char *client_id;                      /* NULL: random */
        const char *share_group;
        uint64_t keepalive_us;
        uint64_t backoff_min_us, backoff_max_us;
        uint64_t inflight;
        uint64_t response_expiry_us;
        /* [limits] and [enrolld] validity */
        struct enroll_policy policy;
        char ca_file_buf[PATH_MAX], cert_file_buf[PATH_MAX], key_file_buf[PATH_MAX];
};

/* Reads the settings from cfg (NULL: all defaults). Strings borrow from cfg
 * or point into *ret. Unknown keys and bad values fail with err naming the
 * file and line. */
int enroll_settings_load(const struct floe_config *cfg, struct enroll_settings *ret,
                         struct floe_config_error *err);

/* floe_config_load(path, "<path>.d") + enroll_settings_load. */
int enroll_config_load(const char *path, struct floe_config **ret_cfg, struct enroll_settings *ret,
                       struct floe_config_error *err);
