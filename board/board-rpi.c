/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Raspberry Pi board: everything linux-generic reads (same code, see
 * board-linux.c), plus the device-tree serial as identity, the SoC
 * temperature under a fixed name, the ACT LED and /dev/watchdog.
 */
#include "board.h"

static const struct board_opt rpi_opts[] = {
        BOARD_LINUX_OPTS("auto", "/dev/watchdog"),
        {0},
};

/* /proc/device-tree is a link to /sys/firmware/devicetree/base; either may be missing. */
static const char *const rpi_identity[] = {
        "proc/device-tree/serial-number",
        "sys/firmware/devicetree/base/serial-number",
        NULL,
};

/* ACT since Linux 5.x Raspberry Pi kernels, led0 before. */
static const char *const rpi_leds[] = {"ACT", "led0", NULL};

static const struct board_linux_profile rpi_profile = {
        .opts = rpi_opts,
        .identity_paths = rpi_identity,
        .auto_leds = rpi_leds,
        .thermal0_sensor = "soc",
};

static int rpi_open(const struct floe_config *cfg, const char *section, void **ret_state,
                    struct floe_config_error *err)
{
        return board_linux_open(&rpi_profile, cfg, section, ret_state, err);
}

const struct board_ops board_rpi_ops = {
        .name = "rpi",
        .doc = "Raspberry Pi: linux-generic plus device-tree serial, ACT LED, /dev/watchdog",
        .opts = rpi_opts,
        .open = rpi_open,
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
