// Micro-benchmark of lib/codec.js against JSON and v8.serialize, same run.
//
//   node bench/codec-micro.mjs [--quick] [--json-buffer] [--batch]
//
// --batch: only the small shape, single and in the batch flow (below).
//
// For each shape it prints ns/op (best of several timed rounds, which is the
// most stable figure on a shared machine) for:
//   advanced  encodeAdvanced into a reused Writer / decodeAdvanced
//   json      encodeJson into a reused Writer / decodeJson (UTF-8 bytes)
//   JSON      JSON.stringify / JSON.parse (strings only, no UTF-8 step)
//   v8        v8.serialize / v8.deserialize (what 'advanced' child_process IPC uses)
// and the ratios JSON/advanced and v8/advanced (> 1 means advanced is faster).
//
// Note: decodeAdvanced returns binaries >= 64 KiB as zero-copy views, so the
// 16 MiB Buffer decode does not copy; v8.deserialize does.

import { createRequire } from 'node:module';
import v8 from 'node:v8';

const require = createRequire(import.meta.url);
const codec = require('../lib/codec.js');
// As lib/channel.js sets the codec up: the addon scans and escapes long JSON strings. (External strings are
// left out: a decoded 16 MiB string is a copy here, in both serializations.)
codec.useJsonNative(require('../lib/native.js'));

const args = new Set(process.argv.slice(2));
const QUICK = args.has('--quick');
const JSON_BUFFER = args.has('--json-buffer');

function kib1Object() {
  // About 1 KiB of JSON: a typical record with nested objects and arrays.
  const o = {
    id: 123456,
    type: 'job.update',
    name: 'build-frontend',
    ok: true,
    ratio: 0.8125,
    createdAt: '2024-05-01T12:34:56.789Z',
    tags: ['ci', 'linux', 'x64', 'node20'],
    owner: { id: 42, login: 'octocat', admin: false, email: 'octocat@example.com' },
    steps: [],
  };
  for (let i = 0; i < 6; i++) {
    o.steps.push({ n: i, name: `step number ${i}`, status: i % 2 ? 'done' : 'queued', ms: 1000 + i * 37.5, exit: null });
  }
  o.note = 'x'.repeat(Math.max(0, 1024 - JSON.stringify(o).length - 10));
  return o;
}

const cases = [
  ['small {k,i,payload}', { k: 't', i: 12345, payload: 'hello world' }],
  ['1 KiB object', kib1Object()],
  ['100 numbers', Array.from({ length: 100 }, (_, i) => (i % 2 ? i * 0.5 + 0.25 : i * 1000))],
  // Text that is not ASCII: a string that V8 holds one byte per character (Latin-1) and one it holds as UTF-16.
  ['1 KiB of German text', { k: 'text', text: 'Die Stra\u00dfe f\u00fchrt \u00fcber den Fluss nach Norden. '.repeat(24).slice(0, 1024) }],
  ['1 KiB of Japanese text', { k: 'text', text: '\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002'.repeat(94).slice(0, 1024) }],
  ['16 MiB Buffer', Buffer.alloc(16 * 1024 * 1024, 0x61)],
  ['16 MiB string', 'abcdefghijklmnop'.repeat(1024 * 1024)],
];

function timeRound(fn, n) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  return Number(process.hrtime.bigint() - t) / n;
}

// Iterations per round so that a round lasts about targetMs.
function calibrate(fn, targetMs) {
  let n = 1;
  let per = timeRound(fn, 1);
  while (per * n < targetMs * 1e6 * 0.25 && n < 1e7) {
    n *= 4;
    per = timeRound(fn, n);
  }
  return Math.max(1, Math.round((targetMs * 1e6) / Math.max(per, 1)));
}

// Best-of-rounds ns/op for each function. Rounds of the competing functions
// are interleaved so that a machine slowing down or speeding up (shared CPUs)
// affects them alike and the ratios stay meaningful.
function measureAll(fns) {
  const targetMs = QUICK ? 15 : 40;
  const rounds = QUICK ? 5 : 15;
  const ns = fns.map((fn) => (fn ? calibrate(fn, targetMs) : 0));
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      if (!fns[i]) continue;
      const t = timeRound(fns[i], ns[i]);
      if (t < best[i]) best[i] = t;
      // Slow operations (many ms per call): a few rounds are enough.
      if (r >= 2 && best[i] * ns[i] > 200e6) fns[i] = null;
    }
  }
  return best.map((b) => (b === Infinity ? undefined : b));
}

function fmt(ns) {
  if (ns === undefined) return 'n/a';
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e4) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns.toFixed(0)} ns`;
}

function ratio(a, b) {
  return a === undefined || b === undefined ? 'n/a' : `${(a / b).toFixed(2)}x`;
}

const writer = new codec.Writer();
// As a channel whose peer is native-ipc: it takes one-byte strings (LATIN1).
writer.peerLatin1 = () => true;
let sink = 0;

console.log(`node ${process.version}, ${process.arch}; ns/op, best of rounds${QUICK ? ' (quick)' : ''}\n`);
const header = ['shape', 'op', 'advanced', 'json', 'JSON', 'v8', 'JSON/adv', 'v8/adv', 'size adv/json/v8'];
const rows = [header];

const ONLY_BATCH = args.has('--batch');

for (const [name, value] of ONLY_BATCH ? cases.slice(0, 1) : cases) {
  const isBuffer = Buffer.isBuffer(value);

  writer.pos = 0;
  codec.encodeAdvanced(writer, value);
  const advBytes = Buffer.from(writer.buf.subarray(0, writer.pos));
  writer.pos = 0;
  codec.encodeJson(writer, value);
  const jsonBytes = Buffer.from(writer.buf.subarray(0, writer.pos));
  const jsonText = JSON.stringify(value);
  const v8Bytes = v8.serialize(value);

  const skipJson = isBuffer && !JSON_BUFFER;

  const [eAdv, eJson, eJSON, eV8] = measureAll([
    () => { writer.pos = 0; codec.encodeAdvanced(writer, value); },
    skipJson ? null : () => { writer.pos = 0; codec.encodeJson(writer, value); },
    skipJson ? null : () => { sink += JSON.stringify(value).length; },
    () => { sink += v8.serialize(value).length; },
  ]);
  const [dAdv, dJson, dJSON, dV8] = measureAll([
    () => { sink += codec.decodeAdvanced(advBytes, 0, advBytes.length) ? 1 : 0; },
    skipJson ? null : () => { sink += codec.decodeJson(jsonBytes, 0, jsonBytes.length) ? 1 : 0; },
    skipJson ? null : () => { sink += JSON.parse(jsonText) ? 1 : 0; },
    () => { sink += v8.deserialize(v8Bytes) ? 1 : 0; },
  ]);
  const enc = { advanced: eAdv, json: eJson, JSON: eJSON, v8: eV8 };
  const dec = { advanced: dAdv, json: dJson, JSON: dJSON, v8: dV8 };
  const sizes = `${advBytes.length}/${skipJson ? 'n/a' : jsonBytes.length}/${v8Bytes.length}`;
  for (const [op, r] of [['encode', enc], ['decode', dec]]) {
    rows.push([op === 'encode' ? name : '', op, fmt(r.advanced), fmt(r.json), fmt(r.JSON), fmt(r.v8),
      ratio(r.JSON, r.advanced), ratio(r.v8, r.advanced), op === 'encode' ? sizes : '']);
  }
}

// Batch flow: what a receiving child does. BATCH small messages are encoded
// back to back into one Buffer (as a 64 KiB read from the pipe would hold
// them) and decoded one after the other with increasing offsets; the
// messages are kept alive for the whole batch, as a real consumer would keep
// them for a while, so the time includes the garbage collection they cause.
// Encode: BATCH messages (distinct objects) into one Writer, back to back.
{
  const BATCH = 1000;
  const msgs = Array.from({ length: BATCH }, (_, i) => ({ k: 't', i: 12345 + i, payload: 'hello world' }));
  const bw = new codec.Writer();
  const offs = new Array(BATCH + 1);
  bw.pos = 0;
  offs[0] = 0;
  for (let i = 0; i < BATCH; i++) { codec.encodeAdvanced(bw, msgs[i]); offs[i + 1] = bw.pos; }
  const batch = Buffer.from(bw.buf.subarray(0, bw.pos));
  const jw = new codec.Writer();
  const joffs = new Array(BATCH + 1);
  joffs[0] = 0;
  for (let i = 0; i < BATCH; i++) { codec.encodeJson(jw, msgs[i]); joffs[i + 1] = jw.pos; }
  const jbatch = Buffer.from(jw.buf.subarray(0, jw.pos));
  const keep = new Array(BATCH);
  const [eAdv, eJson] = measureAll([
    () => { bw.pos = 0; for (let i = 0; i < BATCH; i++) codec.encodeAdvanced(bw, msgs[i]); },
    () => { jw.pos = 0; for (let i = 0; i < BATCH; i++) codec.encodeJson(jw, msgs[i]); },
  ]);
  const [dAdv, dJson] = measureAll([
    () => { for (let i = 0; i < BATCH; i++) keep[i] = codec.decodeAdvanced(batch, offs[i], offs[i + 1]); },
    () => { for (let i = 0; i < BATCH; i++) keep[i] = codec.decodeJson(jbatch, joffs[i], joffs[i + 1]); },
  ]);
  sink += keep.length;
  const name = `batch ${BATCH}x small`;
  rows.push([name, 'encode', fmt(eAdv / BATCH), fmt(eJson / BATCH), 'n/a', 'n/a', 'n/a', 'n/a', `${batch.length}/${jbatch.length}/n/a`]);
  rows.push(['', 'decode', fmt(dAdv / BATCH), fmt(dJson / BATCH), 'n/a', 'n/a', 'n/a', 'n/a', '']);
}

const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) {
  console.log(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
}
if (!JSON_BUFFER) console.log('\n(JSON columns skipped for the Buffer: JSON has no binary type; pass --json-buffer to time Buffer#toJSON anyway)');
if (sink === 0.5) console.log(sink);
