// The JavaScript codec against the shared test vectors of the 'advanced' value format (PROTOCOL.md §5.2,
// __test__/vectors/advanced.txt, also checked by the Rust reference in src/value.rs), through a real channel:
// a raw peer (a real subprocess speaking frames by hand) writes each vector's bytes as a MESSAGE frame to this
// process, whose native-ipc end decodes them with lib/codec.js; this process sends the decoded value, and the
// value the vector's JavaScript expression builds, back; the peer reports the payload bytes it received.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {readFileSync} from 'node:fs';
import {inspect, isDeepStrictEqual} from 'node:util';
import {settle, spawn} from './helpers.mjs';
import {KIND, collect, fixturePath, frame, hello, rawPeer} from './fixtures/r-helpers.mjs';

const evaluate = (js) => new Function(`return (${js});`)();

/** The vectors: {kind, name, bytes, canonical, js}; see the file's header for the line format. */
const vectors = readFileSync(new URL('vectors/advanced.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '' && !line.startsWith('#'))
  .map((line) => {
    const [kind, name, hex = '', ...rest] = line.split('\t');
    const bytes = Buffer.from(hex.replace(/\s+/g, ''), 'hex');
    if (kind === 'valid') return {kind, name, bytes, canonical: bytes, js: rest[0]};
    if (kind === 'accept') return {kind, name, bytes, canonical: Buffer.from(rest[0].replace(/\s+/g, ''), 'hex'), js: rest[1]};
    assert.ok(kind === 'reject' || kind === 'reject-js', `unknown vector kind in ${JSON.stringify(line)}`);
    return {kind, name, bytes};
  });

// Vectors too long to keep in the file, built here.
const units = (text) => Buffer.from(text, 'utf16le');
const extHeader = (type, length) => {
  if (length < 0x100) return Buffer.from([0xc7, length, type]);
  if (length < 0x10000) return Buffer.from([0xc8, length >> 8, length & 0xff, type]);
  const header = Buffer.from([0xc9, 0, 0, 0, 0, type]);
  header.writeUInt32BE(length, 1);
  return header;
};
const string16 = (text) => Buffer.concat([extHeader(3, text.length * 2), units(text)]);
const latin1 = (text) => Buffer.concat([extHeader(14, text.length), Buffer.from(text, 'latin1')]);
/** A str of the text's UTF-8 (str8 or str16). */
const str = (text) => {
  const bytes = Buffer.from(text);
  return Buffer.concat([bytes.length < 0x100 ? Buffer.from([0xd9, bytes.length]) : Buffer.from([0xda, bytes.length >> 8, bytes.length & 0xff]), bytes]);
};
const generated = [
  // (The peer's handshake says it takes LATIN1; for one that does not, see the test further down.)
  {name: '4096 one-byte non-ASCII characters travel as LATIN1', bytes: latin1('\u00e9'.repeat(4096)), js: "'\\u00e9'.repeat(4096)"},
  {name: '4096 code units with one above U+00FF travel as STRING16', bytes: string16('\u20ac' + '\u00e9'.repeat(4095)), js: "'\\u20ac' + '\\u00e9'.repeat(4095)"},
  // UTF-8 from 256 bytes that starts with a character of three bytes is read by the addon (decodeUtf8).
  {name: '120 CJK characters as a str decode (the encoder writes STRING16)', bytes: str('\u65e5\u672c\u8a9e'.repeat(40)), canonical: string16('\u65e5\u672c\u8a9e'.repeat(40)), js: "'\\u65e5\\u672c\\u8a9e'.repeat(40)"},
  // Above the size the decoder makes an external string of, which this process relays as the bytes it got.
  {name: '70000 Latin-1 characters travel as LATIN1 (ext32)', bytes: latin1('\u00fd\u00fe\u00ff\u0000\u0080 '.repeat(14000)), js: "'\\u00fd\\u00fe\\u00ff\\u0000\\u0080 '.repeat(14000)"},
  // From 64 code units (32 with two UTF-8 bytes or more per unit), text that is not ASCII: LATIN1 where one UTF-8
  // byte in 128 or more is beyond one per unit (and no character is above U+00FF), STRING16 where one in 8 is,
  // else UTF-8 (as src/value.rs writes).
  ...[
    ["'\\u00e9'.repeat(4095)", 'latin1'],
    ["'\\u00e9'.repeat(63)", 'latin1'],
    ["'\\u00e9'.repeat(64)", 'latin1'],
    ["'a'.repeat(127) + '\\u00e9'", 'latin1'],
    ["'a'.repeat(128) + '\\u00e9'", 'str'],
    ["'a'.repeat(63) + '\\u20ac'", 'str'],
    ["'\\u20ac'.repeat(64)", 'string16'],
    ["'a'.repeat(60) + '\\u20ac'.repeat(4)", 'string16'],
    ["'a'.repeat(62) + '\\u20ac'.repeat(2)", 'str'],
    // From 32 code units, text with two UTF-8 bytes or more per code unit.
    ["'\\u20ac'.repeat(32)", 'string16'],
    ["'\\u20ac'.repeat(31)", 'str'],
    ["'a'.repeat(16) + '\\u20ac'.repeat(16)", 'string16'],
    ["'a'.repeat(17) + '\\u20ac'.repeat(15)", 'str'],
    ["'\\u00e9'.repeat(32)", 'latin1'],
    ["'\\u00e9'.repeat(31)", 'str'],
  ].map(([js, form]) => {
    const text = evaluate(js);
    const bytes = form === 'latin1' ? latin1(text) : form === 'string16' ? string16(text) : str(text);
    return {name: `${js} travels as ${form}`, bytes, js};
  }),
  {name: '5000 ASCII characters travel as str16', bytes: Buffer.concat([Buffer.from([0xda, 0x13, 0x88]), Buffer.from('a'.repeat(5000))]), js: "'a'.repeat(5000)"},
  {
    name: '1000 nested arrays',
    bytes: Buffer.concat([Buffer.alloc(999, 0x91), Buffer.from([0x90])]),
    js: 'Array.from({length: 999}).reduce((inner) => [inner], [])',
    // Compared by walking down: Node 24's isDeepStrictEqual runs out of stack on 1000 levels.
    check: (value) => {
      let level = value;
      for (let depth = 0; depth < 999; depth++) {
        if (!Array.isArray(level) || level.length !== 1) return [`level ${depth} is not a one-element array`];
        level = level[0];
      }
      return Array.isArray(level) && level.length === 0 ? [] : ['the innermost value is not an empty array'];
    },
  },
].map((v) => ({kind: 'valid', canonical: v.bytes, ...v}));

const type = (value) => (value === null ? 'null' : typeof value !== 'object' ? typeof value : Object.prototype.toString.call(value));

/**
 * Differences between a received value and the expected one. Errors are compared here field by field (Node
 * 20's isDeepStrictEqual recurses without end on an error that is its own cause); the rest by
 * isDeepStrictEqual, plus what it does not look at (Buffer or plain Uint8Array, byteOffset).
 */
const differences = (got, wanted, seen = new Set()) => {
  if (got instanceof Error || wanted instanceof Error) {
    if (seen.has(got)) return [];
    seen.add(got);
    const found = [];
    if (Object.getPrototypeOf(got) !== Object.getPrototypeOf(wanted)) found.push(`prototype of ${inspect(got)} differs`);
    // (The decoder always gives the error an own `stack`, undefined when none travelled: only its value counts.)
    for (const key of ['message', 'cause']) {
      if (Object.hasOwn(got, key) !== Object.hasOwn(wanted, key)) found.push(`own ${key}: ${Object.hasOwn(got, key)} vs ${Object.hasOwn(wanted, key)}`);
    }
    if (got.message !== wanted.message) found.push(`message ${inspect(got.message)} vs ${inspect(wanted.message)}`);
    if (got.stack !== wanted.stack) found.push(`stack ${inspect(got.stack)} vs ${inspect(wanted.stack)}`);
    if (!isDeepStrictEqual(Object.keys(got), Object.keys(wanted))) found.push(`enumerable keys ${Object.keys(got)} vs ${Object.keys(wanted)}`);
    if ((got.cause === got) !== (wanted.cause === wanted)) found.push('self-cause differs');
    else if (got.cause !== got) found.push(...differences(got.cause, wanted.cause, seen));
    return found;
  }
  if (got instanceof Date || wanted instanceof Date) {
    // Node 20's isDeepStrictEqual finds two invalid dates different (NaN !== NaN).
    const same = got instanceof Date && wanted instanceof Date && Object.is(got.getTime(), wanted.getTime());
    return same ? [] : [`${inspect(got)} is not the date ${inspect(wanted)}`];
  }
  if (!isDeepStrictEqual(got, wanted)) return [`${inspect(got, {depth: 4})} is not deep-equal to ${inspect(wanted, {depth: 4})}`];
  const found = [];
  if (Buffer.isBuffer(got) !== Buffer.isBuffer(wanted)) found.push('Buffer-ness differs');
  // A small Buffer is copied into Node's pool (Buffer.allocUnsafe), so only other views must start at 0.
  if (ArrayBuffer.isView(got) && !Buffer.isBuffer(got) && got.byteOffset !== 0) found.push(`byteOffset ${got.byteOffset}`);
  return found;
};

test('valid and accepted vectors: the JS codec decodes each to its value and encodes it back canonically, through a real channel', async () => {
  const cases = [...vectors.filter((v) => v.kind === 'valid' || v.kind === 'accept'), ...generated];
  const subprocess = spawn(process.execPath, [fixturePath('v-raw-echo.cjs')], {ipc: true, stdio: ['pipe', 'pipe', 'inherit']});
  const output = collect(subprocess.stdout);
  subprocess.stdin.end(Buffer.concat([hello({l: true}), ...cases.map((v) => frame(KIND.message, v.bytes))]));

  const problems = [];
  let index = 0;
  for await (const message of subprocess.getEachMessage()) {
    const v = cases[index];
    const wanted = evaluate(v.js);
    for (const difference of v.check ? v.check(message) : differences(message, wanted)) problems.push(`${v.name}: decoded value: ${difference}`);
    // Back to the peer: the decoded value (decode + encode) and the expected one (encode only).
    await subprocess.sendMessage(message);
    await subprocess.sendMessage(wanted);
    if (++index === cases.length) break;
  }
  assert.equal(index, cases.length);
  subprocess.disconnect();
  const lines = (await output.end).trim().split('\n');
  const {exitCode} = await subprocess;
  assert.equal(exitCode, 0);

  assert.match(lines[0], /^1 /, 'the first frame is the handshake');
  assert.equal(lines.length, 1 + 2 * cases.length, `frames received by the peer: ${lines.slice(-3).join(' | ')}`);
  cases.forEach((v, i) => {
    const canonical = v.canonical.toString('hex');
    const [echoKind, echoed] = lines[1 + 2 * i].split(' ');
    const [sentKind, sent] = lines[2 + 2 * i].split(' ');
    assert.equal(echoKind, String(KIND.message));
    assert.equal(sentKind, String(KIND.message));
    if (echoed !== canonical) problems.push(`${v.name}: re-encoding the decoded value gives ${echoed}, expected ${canonical}`);
    if (sent !== canonical) problems.push(`${v.name}: encoding ${v.js} gives ${sent}, expected ${canonical}`);
  });
  assert.deepEqual(problems, []);
});

test('a peer whose handshake does not say "l" gets no LATIN1: one-byte strings go as STRING16 or str, also one relayed from a LATIN1 value', async () => {
  // Long enough for the decoder to keep the bytes it arrived in, to send on as they are to a peer that takes them.
  const relayed = '\u00e9t\u00e9 '.repeat(17500);
  const cases = [
    [relayed, string16(relayed)],
    ['\u00e9'.repeat(5000), string16('\u00e9'.repeat(5000))],
    ['\u00ff'.repeat(4095), string16('\u00ff'.repeat(4095))],
    ['\u00e9'.repeat(64), string16('\u00e9'.repeat(64))],
    ['a'.repeat(127) + '\u00e9', str('a'.repeat(127) + '\u00e9')],
    ['a'.repeat(5000), str('a'.repeat(5000))],
  ];
  const subprocess = spawn(process.execPath, [fixturePath('v-raw-echo.cjs')], {ipc: true, stdio: ['pipe', 'pipe', 'inherit']});
  const output = collect(subprocess.stdout);
  subprocess.stdin.end(Buffer.concat([hello(), frame(KIND.message, latin1(relayed))]));
  const received = await subprocess.getOneMessage();
  assert.ok(received === relayed, 'a LATIN1 value is decoded whatever the peer announced');
  // Sent back in the turn it arrived in, as the first case.
  for (const [value] of cases) subprocess.sendMessage(value);
  await subprocess.sendMessage(null);
  subprocess.disconnect();
  const lines = (await output.end).trim().split('\n');
  assert.equal((await subprocess).exitCode, 0);
  assert.equal(lines.length, 2 + cases.length);
  cases.forEach(([value, bytes], i) => {
    assert.equal(lines[1 + i], `${KIND.message} ${bytes.toString('hex')}`, `${value.length} characters from ${JSON.stringify(value.slice(0, 4))}`);
  });
});

/**
 * A raw peer sends one good message and then `payload`: the good one must arrive, then the channel must fail
 * with ERR_IPC_BAD_PAYLOAD and nothing more be delivered. Returns what went otherwise.
 */
const expectBadPayload = async (payload) => {
  const subprocess = rawPeer(Buffer.concat([hello(), frame(KIND.message, Buffer.from([0xc3])), frame(KIND.message, payload)]), 'hold');
  const problems = [];
  // The filter passes over the good message, so this receive is the one the bad payload fails.
  const outcome = await subprocess.getOneMessage({filter: (message) => message !== true}).then(
    (message) => ({message}),
    (error) => ({error}),
  );
  if (outcome.error === undefined) problems.push(`decoded to ${inspect(outcome.message)}`);
  else if (outcome.error.code !== 'ERR_IPC_BAD_PAYLOAD') problems.push(`failed with ${outcome.error.code}: ${outcome.error.message}`);
  if (subprocess.connected) problems.push('the channel stayed open');
  const result = await settle(subprocess);
  if (result.ok) {
    problems.push('the subprocess result did not fail');
  } else {
    if (result.error.exitCode !== 0) problems.push(`the peer exited with ${result.error.exitCode}`);
    if (!isDeepStrictEqual(result.error.ipcOutput, [true])) problems.push(`delivered ${inspect(result.error.ipcOutput)}`);
  }
  return problems;
};

test('reject vectors: the JS codec refuses each with ERR_IPC_BAD_PAYLOAD, closing the channel after the valid frames', async () => {
  const problems = [];
  // And UTF-8 from 256 bytes that starts with a character of three bytes (read by the addon) cut, with a lone
  // continuation byte, or with an overlong form.
  for (const bad of [[0xe6, 0x97], [0x80], [0xc0, 0xaf]]) {
    const bytes = Buffer.concat([Buffer.from('\u65e5'.repeat(100)), Buffer.from(bad)]);
    const payload = Buffer.concat([Buffer.from([0xda, bytes.length >> 8, bytes.length & 0xff]), bytes]);
    for (const problem of await expectBadPayload(payload)) problems.push(`a CJK str ending in ${Buffer.from(bad).toString('hex')}: ${problem}`);
  }
  for (const v of vectors.filter((v) => v.kind === 'reject' || v.kind === 'reject-js')) {
    for (const problem of await expectBadPayload(v.bytes)) problems.push(`${v.name} (${v.bytes.toString('hex')}): ${problem}`);
  }
  assert.deepEqual(problems, []);
});

test('reject vectors in the middle of a batch read by one getEachMessage() loop: the messages before it arrive, then the loop fails with ERR_IPC_BAD_PAYLOAD', async () => {
  // One write: three good messages, the bad one and a good one after it reach the parent in one batch, which a
  // lone getEachMessage() loop (no ipcOutput) takes on the channel's run path (codec.beginRun/runValue).
  const good = [0, 1, 2].map((n) => frame(KIND.message, Buffer.from([n])));
  const problems = [];
  for (const v of vectors.filter((v) => v.kind === 'reject' || v.kind === 'reject-js')) {
    const bytes = Buffer.concat([hello(), ...good, frame(KIND.message, v.bytes), frame(KIND.message, Buffer.from([0xc3]))]);
    const subprocess = rawPeer(bytes, 'eof', {buffer: false});
    const received = [];
    let failure;
    try {
      for await (const message of subprocess.getEachMessage()) received.push(message);
    } catch (error) {
      failure = error;
    }
    if (!isDeepStrictEqual(received, [0, 1, 2])) problems.push(`${v.name}: delivered ${inspect(received)}`);
    // The parent's loop fails with the subprocess's failure, whose cause is the channel's error.
    if (failure?.cause?.code !== 'ERR_IPC_BAD_PAYLOAD') problems.push(`${v.name}: the loop ended with ${inspect(failure)}`);
    await settle(subprocess);
  }
  assert.deepEqual(problems, []);
});

test('nesting beyond the depth limit (10001 arrays, 10001 Sets) is refused with ERR_IPC_BAD_PAYLOAD', async () => {
  assert.deepEqual(await expectBadPayload(Buffer.concat([Buffer.alloc(10_000, 0x91), Buffer.from([0x90])])), []);
  // Set inside Set: each level's payload is the next level's whole encoding, so lengths grow outward.
  let set = Buffer.from([0xd4, 0x07, 0x90]);
  for (let level = 1; level <= 10_000; level++) {
    const payload = Buffer.concat([Buffer.from([0x91]), set]);
    set = Buffer.concat([payload.length < 0x100 ? Buffer.from([0xc7, payload.length, 0x07]) : payload.length < 0x10000 ? Buffer.from([0xc8, payload.length >> 8, payload.length & 0xff, 0x07]) : Buffer.from([0xc9, ...[24, 16, 8, 0].map((s) => (payload.length >>> s) & 0xff), 0x07]), payload]);
  }
  assert.deepEqual(await expectBadPayload(set), []);
});

test('every vector type is covered: a JS value of each kind the format maps', () => {
  const types = new Set(vectors.filter((v) => v.js !== undefined).map((v) => type(evaluate(v.js))));
  for (const wanted of ['undefined', 'boolean', 'number', 'bigint', 'string', 'null', '[object Object]', '[object Array]', '[object Map]', '[object Set]', '[object Date]', '[object RegExp]', '[object Error]', '[object Number]', '[object String]', '[object Boolean]', '[object BigInt]', '[object ArrayBuffer]', '[object DataView]', '[object Uint8Array]', '[object Int8Array]', '[object Uint8ClampedArray]', '[object Int16Array]', '[object Uint16Array]', '[object Int32Array]', '[object Uint32Array]', '[object Float32Array]', '[object Float64Array]', '[object BigInt64Array]', '[object BigUint64Array]']) {
    assert.ok(types.has(wanted), `no vector for ${wanted}`);
  }
});
