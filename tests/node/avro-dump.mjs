// SPDX-License-Identifier: Apache-2.0
// Decodes Avro object container files with avsc (a strict Avro implementation) and prints,
// per file, its header metadata, its writer schema and every record as JSON. Longs are read
// as BigInt (Iceberg ids exceed 2^53) and printed as decimal strings; bytes as hex.
//   node avro-dump.mjs FILE.avro...
import avro from 'avsc'
import zlib from 'node:zlib'

const longType = avro.types.LongType.__with({
  fromBuffer: (buf) => buf.readBigInt64LE(),
  toBuffer: (n) => {
    const buf = Buffer.alloc(8)
    buf.writeBigInt64LE(BigInt(n))
    return buf
  },
  fromJSON: BigInt,
  toJSON: Number,
  isValid: (n) => typeof n === 'bigint',
  compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
})

function plain(v) {
  if (typeof v === 'bigint') return v.toString()
  if (Buffer.isBuffer(v)) return { hex: v.toString('hex') }
  if (Array.isArray(v)) return v.map(plain)
  if (v && typeof v === 'object') {
    const o = {}
    for (const [k, x] of Object.entries(v)) o[k] = plain(x)
    return o
  }
  return v
}

function decode(path) {
  return new Promise((resolve, reject) => {
    const out = { file: path, meta: {}, codec: null, schema: null, records: [] }
    avro
      .createFileDecoder(path, {
        codecs: {
          null: (buf, cb) => cb(null, buf),
          deflate: zlib.inflateRaw,
        },
        parseHook: (schema) => {
          out.schema = schema
          return avro.Type.forSchema(schema, { registry: { long: longType } })
        },
      })
      .on('metadata', (type, codec, header) => {
        out.codec = codec
        for (const [k, v] of Object.entries(header.meta)) out.meta[k] = v.toString()
      })
      .on('data', (record) => out.records.push(plain(record)))
      .on('error', reject)
      .on('end', () => resolve(out))
  })
}

const results = []
for (const path of process.argv.slice(2)) results.push(await decode(path))
process.stdout.write(JSON.stringify(results) + '\n')
