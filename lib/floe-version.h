/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* floe's version, one for every program (packaging/debian/changelog carries the same). The
 * build adds FLOE_BUILD, the commit it was built from (git describe). */
#ifndef FLOE_VERSION
#define FLOE_VERSION "0.1.0"
#endif
#ifndef FLOE_BUILD
#define FLOE_BUILD "unknown"
#endif
