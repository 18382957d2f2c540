// SPDX-License-Identifier: Apache-2.0
// Reads Parquet files with DuckDB's read_parquet (the file list an Iceberg table's manifests
// give) and prints the rows as JSON, the timestamp columns named by --micros as microseconds
// since the epoch, plus the files' Parquet field ids.
//   node duckdb-scan.mjs [--micros COL,COL] FILE.parquet...
import { DuckDBInstance } from '@duckdb/node-api'

let args = process.argv.slice(2)
let micros = []
if (args[0] === '--micros') {
  micros = args[1].split(',')
  args = args.slice(2)
}
const files = args
const instance = await DuckDBInstance.create(':memory:', { threads: '1' })
const con = await instance.connect()
const list = '[' + files.map((f) => `'${f.replaceAll("'", "''")}'`).join(', ') + ']'
const replace = micros.length
  ? ` REPLACE (${micros.map((c) => `epoch_us("${c}") AS "${c}"`).join(', ')})`
  : ''
const rows = await con.runAndReadAll(
  `SELECT *${replace} FROM read_parquet(${list}, hive_partitioning = false)`,
)
const ids = await con.runAndReadAll(
  `SELECT DISTINCT name, field_id FROM parquet_schema(${list}) WHERE field_id IS NOT NULL ORDER BY field_id`,
)
process.stdout.write(
  JSON.stringify({ rows: rows.getRowObjectsJson(), field_ids: ids.getRowObjectsJson() }) + '\n',
)
