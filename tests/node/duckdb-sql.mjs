// SPDX-License-Identifier: Apache-2.0
// Runs SQL statements with DuckDB and prints the last one's rows as JSON:
// node duckdb-sql.mjs 'STATEMENT' ['STATEMENT'...]
import { DuckDBInstance } from '@duckdb/node-api';
import { print } from './json-safe.mjs';

if (process.argv.length < 3) {
  process.stderr.write('usage: node duckdb-sql.mjs STATEMENT...\n');
  process.exit(2);
}
const instance = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
});
const con = await instance.connect();
let rows = [];
for (const sql of process.argv.slice(2)) rows = (await con.runAndReadAll(sql)).getRowObjectsJS();
print(rows);
