/* SPDX-License-Identifier: Apache-2.0 */
/* floe-uploader: the daemon, its configuration check and its status. */
#include <stdio.h>
#include <string.h>

#include "floe-daemon.h"
#include "upl-settings.h"
#include "uploader.h"

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: floe-uploader [--config FILE]          run the uploader\n"
                "       floe-uploader --check-config [--config FILE]\n"
                "       floe-uploader status [--config FILE]   what the running uploader "
                "reports\n"
                "       floe-uploader --version\n"
                "The configuration is FILE (default " UPL_CONFIG_DEFAULT ") and FILE.d/*.conf.\n");
}

int main(int argc, char **argv)
{
        static const char *const commands[] = {"status", NULL};
        const struct floe_daemon_cli cli = {
                .name = "floe-uploader",
                .version = FLOE_VERSION,
                .config_default = UPL_CONFIG_DEFAULT,
                .usage = usage,
                .commands = commands,
        };
        struct floe_daemon_args a;
        struct upl *u = NULL;
        int r;

        r = floe_daemon_parse(&cli, argc, argv, &a);
        if (r != FLOE_DAEMON_RUN)
                return r == FLOE_DAEMON_EXIT ? 0 : 2;
        floe_daemon_log_open("floe-uploader");
        if (a.check)
                return upl_check_config_command(a.config);
        if (a.command && strcmp(a.command, "status") == 0)
                return upl_status_command(a.config);
        r = upl_new(a.config, &u);
        if (r < 0)
                return 1;
        r = upl_run(u);
        upl_free(u);
        return r < 0 ? 1 : 0;
}
