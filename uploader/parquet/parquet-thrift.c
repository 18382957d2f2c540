/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "floe-varint.h"
#include "parquet-thrift.h"

static const char *const type_names[] = {
        [TT_STOP] = "stop", [TT_TRUE] = "bool",     [TT_FALSE] = "bool", [TT_I8] = "i8",
        [TT_I16] = "i16",   [TT_I32] = "i32",       [TT_I64] = "i64",    [TT_DOUBLE] = "double",
        [TT_BINARY] = "binary", [TT_LIST] = "list", [TT_SET] = "set",    [TT_MAP] = "map",
        [TT_STRUCT] = "struct",
};

const char *parquet_thrift_type_name(unsigned type)
{
        return type < ELEMENTSOF_TYPES ? type_names[type] : "invalid";
}
