// SPDX-License-Identifier: Apache-2.0
// Reads a Parquet file with hyparquet (+ hyparquet-compressors for ZSTD):
// node parquet-hyparquet.mjs FILE
// Prints {columns: [names], rows: [[...]], metadata} as JSON. Timestamps stay integer
// microseconds and dates integer days (custom parsers), so values compare exactly.
import { readFile } from 'node:fs/promises';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { print } from './json-safe.mjs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node parquet-hyparquet.mjs FILE\n');
  process.exit(2);
}
const buf = await readFile(file);
const arrayBuffer = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
const metadata = parquetMetadata(arrayBuffer);
const columns = metadata.schema.slice(1).map((e) => e.name);
const objects = await parquetReadObjects({
  file: arrayBuffer,
  compressors,
  parsers: {
    timestampFromMicroseconds: (v) => v,
    timestampFromMilliseconds: (v) => v,
    dateFromDays: (v) => v,
  },
});
print({
  columns,
  rows: objects.map((o) => columns.map((c) => o[c])),
  metadata,
});
