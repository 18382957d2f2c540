/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* floe's version, one for every program (packaging/debian/changelog carries the same). The
 * build adds FLOE_BUILD, the commit it was built from (git describe), and FLOE_BUILD_EPOCH. */
#ifndef FLOE_VERSION
#define FLOE_VERSION "0.1.0"
#endif
#ifndef FLOE_BUILD
#define FLOE_BUILD "unknown"
#endif
/* The build's date in Unix seconds (SOURCE_DATE_EPOCH or the commit's: reproducible). */
#ifndef FLOE_BUILD_EPOCH
#define FLOE_BUILD_EPOCH 0
#endif
