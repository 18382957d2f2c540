// SPDX-License-Identifier: Apache-2.0
// Reads an Iceberg table with icebird over HTTP, as a browser or a service reading a lake
// through a web server would: version-hint.text -> vN.metadata.json -> manifest list ->
// manifests -> Parquet (ranged GETs), all fetched from a real HTTP server. Locations recorded in
// the metadata (file:///warehouse/...) are fetched under the server's URL instead (--map
// FROM=TO, a plain prefix rewrite, as icebird itself rewrites s3:// to https://).
//   node icebird-http.mjs http://127.0.0.1:PORT/ns/table --map file:///wh/=http://127.0.0.1:PORT/
// Prints {rows, fetched: [url...], statuses: [status...]} as JSON.
import { icebergRead } from 'icebird'

const args = process.argv.slice(2)
const tableUrl = args[0]
const maps = []
for (let i = 1; i < args.length; i += 2) {
  if (args[i] !== '--map' || !args[i + 1] || !args[i + 1].includes('=')) {
    process.stderr.write('usage: node icebird-http.mjs TABLE_URL [--map FROM=TO]...\n')
    process.exit(2)
  }
  const eq = args[i + 1].indexOf('=')
  maps.push([args[i + 1].slice(0, eq), args[i + 1].slice(eq + 1)])
}

const realFetch = globalThis.fetch
const fetched = []
const statuses = []
globalThis.fetch = async (input, init = {}) => {
  let url = typeof input === 'string' ? input : input.url
  for (const [from, to] of maps) {
    if (url.startsWith(from)) {
      url = to + url.slice(from.length)
      break
    }
  }
  if (!url.startsWith('http://')) throw new Error(`not fetched over HTTP: ${url}`)
  fetched.push(url)
  const res = await realFetch(url, init)
  statuses.push(res.status)
  return res
}

const rows = await icebergRead({ tableUrl })
const plain = (k, v) => (typeof v === 'bigint' ? v.toString() : v)
process.stdout.write(JSON.stringify({ rows, fetched, statuses }, plain) + '\n')
