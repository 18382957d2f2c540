/* SPDX-License-Identifier: Apache-2.0 */
/* The wire decoder on whole frames: zstd header checks, limits, then CBOR. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-wire-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_wire_one(data, size, false);
        return 0;
}
