// SPDX-License-Identifier: Apache-2.0
// Reads a Parquet file with DuckDB: node parquet-duckdb.mjs FILE
// Prints {columns: [{name, type}], rows: [[...]], metadata, schema, file, kv} as JSON. Timestamps
// come back as integer microseconds (epoch_us) and dates as days since 1970-01-01, so values
// compare exactly; column types are DuckDB's own reading of the file's logical types.
import { DuckDBInstance } from '@duckdb/node-api';
import { print } from './json-safe.mjs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node parquet-duckdb.mjs FILE\n');
  process.exit(2);
}
const lit = `'${file.replaceAll("'", "''")}'`;
const ident = (n) => `"${n.replaceAll('"', '""')}"`;

const instance = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
});
const con = await instance.connect();
const all = async (sql) => (await con.runAndReadAll(sql)).getRowObjectsJS();

const columns = (await all(`DESCRIBE SELECT * FROM read_parquet(${lit})`)).map((r) => ({
  name: r.column_name,
  type: r.column_type,
}));
const select = columns
  .map(({ name, type }) => {
    if (type.startsWith('TIMESTAMP')) return `epoch_us(${ident(name)})`;
    if (type === 'DATE') return `(${ident(name)} - DATE '1970-01-01')`;
    return ident(name);
  })
  .join(', ');
const reader = await con.runAndReadAll(
  `SELECT ${select} FROM read_parquet(${lit}, file_row_number = false)`,
);
print({
  columns,
  rows: reader.getRowsJS(),
  metadata: await all(`SELECT * FROM parquet_metadata(${lit})`),
  schema: await all(`SELECT * FROM parquet_schema(${lit})`),
  file: await all(`SELECT * FROM parquet_file_metadata(${lit})`),
  kv: (await all(`SELECT decode(key) AS key, decode(value) AS value FROM parquet_kv_metadata(${lit})`)),
});
