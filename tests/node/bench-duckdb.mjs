// SPDX-License-Identifier: Apache-2.0
// DuckDB's side of tests/bench/bench-parquet.c: node bench-duckdb.mjs IN OUT ROUNDS
// Loads the rows of IN (our Parquet file) into a table, then times
// COPY t TO OUT (FORMAT parquet, COMPRESSION zstd) with SET threads=1, ROUNDS times.
// Prints {version, rows, seconds (best), median, bytes} as one JSON line.
import { stat } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';

const [input, output, roundsArg] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write('usage: node bench-duckdb.mjs IN OUT [ROUNDS]\n');
  process.exit(2);
}
const rounds = Number(roundsArg || 5);
const lit = (s) => `'${s.replaceAll("'", "''")}'`;
const instance = await DuckDBInstance.create(':memory:', {
  autoinstall_known_extensions: 'false',
  autoload_known_extensions: 'false',
});
const con = await instance.connect();
const one = async (sql) => (await con.runAndReadAll(sql)).getRowsJS()[0][0];

const version = await one('SELECT version()');
await con.run(`CREATE TABLE t AS SELECT * FROM read_parquet(${lit(input)})`);
const rows = Number(await one('SELECT count(*) FROM t'));
await con.run('SET threads = 1');
const times = [];
for (let i = 0; i < rounds; i++) {
  const t0 = performance.now();
  await con.run(`COPY t TO ${lit(output)} (FORMAT parquet, COMPRESSION zstd)`);
  times.push((performance.now() - t0) / 1000);
}
times.sort((a, b) => a - b);
const { size } = await stat(output);
process.stdout.write(
  JSON.stringify({ version, rows, seconds: times[0], median: times[times.length >> 1], bytes: size }) +
    '\n',
);
