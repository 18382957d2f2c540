/* SPDX-License-Identifier: Apache-2.0 */
/* The wire decoder on the CBOR map, past the zstd checksum that would stop
 * most mutations. Whatever decodes must re-encode and decode to the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-wire-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        fuzz_wire_one(data, size, true);
        return 0;
}
