// SPDX-License-Identifier: Apache-2.0
// Reads an Iceberg table with icebird (version-hint.text -> vN.metadata.json -> manifest list
// -> manifests -> Parquet) and prints its rows as JSON. icebird fetches everything through
// global fetch, which in Node has no file: URLs: file:// locations are answered here from the
// local files, honouring Range requests as an object store would.
//   node icebird-read.mjs file:///path/to/warehouse/ns/table
import { open } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { icebergRead } from 'icebird'

const realFetch = globalThis.fetch
const fetched = []

globalThis.fetch = async (input, init = {}) => {
  const url = typeof input === 'string' ? input : input.url
  if (!url.startsWith('file://')) return realFetch(input, init)
  fetched.push(url)
  let fh
  try {
    fh = await open(fileURLToPath(url))
  } catch {
    return new Response('not found', { status: 404, statusText: 'Not Found' })
  }
  try {
    const size = (await fh.stat()).size
    const headers = new Headers(init.headers || {})
    const range = headers.get('range')
    if (init.method === 'HEAD') {
      return new Response(null, { status: 200, headers: { 'content-length': String(size) } })
    }
    let start = 0
    let end = size - 1
    let status = 200
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range)
      if (!m) return new Response('bad range', { status: 416 })
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]))
      } else {
        start = Number(m[1])
        if (m[2] !== '') end = Math.min(end, Number(m[2]))
      }
      status = 206
    }
    const buf = Buffer.alloc(Math.max(0, end - start + 1))
    await fh.read(buf, 0, buf.length, start)
    return new Response(buf, {
      status,
      headers: { 'content-length': String(buf.length) },
    })
  } finally {
    await fh.close()
  }
}

const tableUrl = process.argv[2]
const rows = await icebergRead({ tableUrl })
process.stdout.write(
  JSON.stringify({ rows, fetched }, (k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n',
)
