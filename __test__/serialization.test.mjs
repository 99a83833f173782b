// Every value type through a real child and back, compared with structured clone (advanced) and with
// JSON.parse(JSON.stringify()) (json); what cannot be sent; hostile payloads.
import {test} from 'node:test';
import v8 from 'node:v8';
import assert from 'node:assert/strict';
import {isDeepStrictEqual} from 'node:util';
import {fileURLToPath} from 'node:url';
import {readFileSync} from 'node:fs';
import {execFileSync} from 'node:child_process';
import {createRequire} from 'node:module';
import {fork, spawn, fixture, settle} from './helpers.mjs';

// The codec instance the channel uses, through native-ipc's loader (an `import` of lib/codec.js would be a
// module Node's ES module loader registers before it runs it, which the loader would then find still empty).
const codec = createRequire(import.meta.url)('../lib/load.js').load('codec.js');

const echo = async (subprocess, value) => {
  const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(value)]);
  return reply;
};

/** What a message arrives as: itself, or in json mode what JSON.parse(JSON.stringify()) makes of it. */
const arrivesAs = (serialization, message) => (serialization === 'json' ? JSON.parse(JSON.stringify(message)) : message);

/** Sends every message in one go (so they share batches) to an echo child and checks each reply, in order. */
const echoAllAtOnce = async (messages, serialization = 'advanced') => {
  const subprocess = fork(fixture('echo.mjs'), [], {serialization});
  const replies = subprocess.getEachMessage()[Symbol.asyncIterator]();
  for (const message of messages) {
    subprocess.sendMessage(message);
  }
  for (const [index, message] of messages.entries()) {
    const {value} = await replies.next();
    const wanted = arrivesAs(serialization, message);
    assert.ok(isDeepStrictEqual(value, wanted), `message ${index}: ${JSON.stringify(message)} came back as ${JSON.stringify(value)}`);
  }
  subprocess.disconnect();
  await subprocess;
};

const cyclic = () => {
  const node = {name: 'root', children: []};
  node.children.push({parent: node});
  node.self = node;
  return node;
};

const shared = () => {
  const leaf = {v: 1};
  return {a: leaf, b: leaf, list: [leaf, leaf]};
};

const withHoles = () => {
  // eslint-disable-next-line no-sparse-arrays
  const array = [1, , 3];
  array.length = 5;
  return array;
};

const errorWithCause = () => {
  const error = new RangeError('outer', {cause: new TypeError('inner')});
  return error;
};

const CASES = {
  undefined,
  null: null,
  booleans: [true, false],
  numbers: [0, -0, 1, -1, 255, 65_536, 2 ** 31, 2 ** 53 - 1, -(2 ** 53), 0.1, Number.MAX_VALUE, Number.MIN_VALUE, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
  bigints: [0n, 1n, -1n, 2n ** 64n, -(2n ** 200n)],
  strings: ['', 'ascii', 'é ü ß', '日本語', '😀 emoji', 'lone \uD800 surrogate', '\uDC00 low', 'x'.repeat(100_000)],
  object: {z: 1, a: 2, nested: {deep: [1, {x: null}]}, 'key with space': true},
  keyOrder: {b: 1, a: 2, 10: 'n', c: 3},
  protoKeys: JSON.parse('{"__proto__": {"polluted": true}, "constructor": 1, "prototype": 2}'),
  arrays: [[], [1, 'two', [3]], withHoles()],
  date: new Date(1_700_000_000_123),
  invalidDate: new Date(Number.NaN),
  regexp: /a+b?c/gimsuy,
  map: new Map([
    [1, 'one'],
    ['k', {v: 2}],
    [{objectKey: true}, [1]],
  ]),
  set: new Set([1, 'two', {three: 3}]),
  errors: [new Error('plain'), new TypeError('type'), new RangeError('range'), new SyntaxError('syntax'), new ReferenceError('ref'), new EvalError('eval'), new URIError('uri'), errorWithCause()],
  arrayBuffer: new Uint8Array([1, 2, 3, 250]).buffer,
  typedArrays: [
    new Int8Array([-1, 2]),
    new Uint8Array([1, 255]),
    new Uint8ClampedArray([0, 255]),
    new Int16Array([-300, 300]),
    new Uint16Array([65_535]),
    new Int32Array([-70_000]),
    new Uint32Array([4_000_000_000]),
    new Float32Array([1.5, -2.25]),
    new Float64Array([Math.PI, -0]),
    new BigInt64Array([-5n, 2n ** 62n]),
    new BigUint64Array([2n ** 64n - 1n]),
  ],
  subarray: new Uint16Array(new Uint16Array([1, 2, 3, 4]).buffer, 2, 2),
  dataView: new DataView(new Uint8Array([9, 8, 7, 6]).buffer, 1, 2),
  boxed: [Object(1), Object('s'), Object(true), Object(5n)],
  classInstance: new (class Point {
    constructor() {
      this.x = 1;
      this.y = 2;
    }
  })(),
  cyclic: cyclic(),
  shared: shared(),
};

for (const [name, value] of Object.entries(CASES)) {
  test(`advanced: ${name} arrives as structured clone makes it, both ways`, async () => {
    const subprocess = fork(fixture('echo.mjs'));
    const reply = await echo(subprocess, value);
    const expected = structuredClone(value);
    if (name === 'invalidDate') {
      // isDeepStrictEqual never finds two invalid dates equal (NaN !== NaN).
      assert.ok(reply instanceof Date && Number.isNaN(reply.getTime()) && Number.isNaN(expected.getTime()));
    } else {
      assert.ok(isDeepStrictEqual(reply, expected), `${name}: got ${String(reply)}`);
    }
    subprocess.disconnect();
    await subprocess;
  });
}

for (const serialization of ['advanced', 'json']) test(`${serialization}: object keys stay right when shapes change from one message to the next at the same positions`, async () => {
  // The encoder reuses the encoded form of the key it last wrote at each position of an object, and (advanced)
  // of a key that missed there, the one in a slot picked by its length and first and last characters; every
  // kind of key passes through the same positions here, alternating, nested, past the 16 cached positions, and
  // sharing those slots ('axb', 'ayb' and 'azb' take the same one).
  const long = 'k'.repeat(23);
  const longer = 'k'.repeat(24);
  const wide = Object.fromEntries(Array.from({length: 20}, (_, i) => [`key${i}`, i]));
  const shapes = [
    {a: 1, b: 2},
    {b: 3, a: 4},
    {[long]: 1, [longer]: 2, [`${long}x`]: 3},
    {[`${'k'.repeat(22)}`]: 0, 'é': 'accent', '\u{1F600}': 'astral', '': 'empty'},
    {'a\uD800': 'lone surrogate', b: {a: {b: 'nested'}}},
    {0: 'index', 1: 'index', a: 'named'},
    wide,
    {key19: 'moved', key0: 'moved'},
    {['ab'.slice(0, 1)]: 'same text as the key a, another string', b: 2},
    {axb: 1, ayb: {azb: 2, axb: 3}, azb: [{ayb: 4}]},
    {ayb: 5, axb: 6, nested: {axb: {ayb: 7}}},
    {id: 1, payload: {file: 'f', size: 2}, owner: {user: 'u'}, tags: ['t'], ...wide, deps: [{id: 0, kind: 'hard'}]},
    {payload: 1, id: {owner: 2, file: 3}, [`${long}xy`]: {[`${long}xy`]: 4}},
  ];
  const subprocess = fork(fixture('echo.mjs'), [], {serialization});
  for (let round = 0; round < 3; round++) {
    for (const value of shapes) {
      const reply = await echo(subprocess, value);
      const wanted = arrivesAs(serialization, value);
      assert.deepEqual(Object.keys(reply), Object.keys(wanted));
      assert.ok(isDeepStrictEqual(reply, wanted), `round ${round}: ${JSON.stringify(value)} came back as ${JSON.stringify(reply)}`);
    }
  }
  subprocess.disconnect();
  await subprocess;
});

for (const serialization of ['advanced', 'json']) test(`${serialization}: string values stay right when one batch repeats, changes and alternates them at the same positions`, async () => {
  // The encoder reuses the encoded form of a short string value that came twice in a row at the same position
  // of an object, until the batch is flushed. Every message here is sent in one go, so they share a batch.
  const s23 = 'v'.repeat(23);
  const values = [
    't', 't', 't', 'u', 't', 'hello world', 'hello world', ['hello', 'world'].join(' '), 'hellO world',
    '', '', 'é', 'é', 'ê', '\u{1F600}', '\u{1F600}', 'a\uD800', 'a\uD800', 'a\uD801', s23, s23, `${s23}w`, `${s23}w`,
    'x'.repeat(40).slice(1, 24), 'x'.repeat(40).slice(2, 25), 1, null, 'x', {nested: 'x'}, 'x', 'x', undefined, 'x',
  ];
  const messages = [];
  for (const v of values) {
    messages.push({k: v, i: messages.length, payload: v});
  }
  // A run of values that never repeat (the position is then left alone), then repeats again.
  for (let i = 0; i < 20; i++) {
    messages.push({k: 't', i, payload: `unique ${i}`}, {k: 't', i, payload: 'again'});
  }
  for (let i = 0; i < 4; i++) {
    messages.push({k: 't', i, payload: 'again'});
  }
  // Shapes that change under the same positions, a value equal to its key, positions past the 16 cached.
  const wide = Object.fromEntries(Array.from({length: 20}, (_, i) => [`key${i}`, `value${i}`]));
  for (let round = 0; round < 3; round++) {
    messages.push({a: 'x', b: 'y'}, {b: 'x', a: 'y'}, {a: 'a', b: 'b'}, {a: 'a', b: 'b'}, wide, wide, {key0: 'value19', key19: 'value0'});
    messages.push(['t', 't', 'hello world'], {list: ['t', 't'], inner: {k: 't', payload: 'hello world'}});
  }
  await echoAllAtOnce(messages, serialization);
});

test('advanced: short strings that differ from a cached one in a single byte arrive as sent, as keys and values', async () => {
  // The decoder caches short strings and verifies a hit by 32-bit words: the first and the last (overlapping it
  // below 8 bytes), then the ones between. A string one byte away from the cached one, at any offset of any length
  // up to the 16 bytes cached and just past them, must miss. Each pair goes in one batch, so the second finds
  // the first in the cache.
  const messages = [];
  for (let n = 1; n <= 17; n++) {
    const base = 'abcdefghijklmnopq'.slice(0, n);
    for (let j = 0; j < n; j++) {
      const variant = `${base.slice(0, j)}Z${base.slice(j + 1)}`;
      messages.push({s: base, [base]: j}, {s: variant, [variant]: j}, {s: base, [base]: j});
    }
  }
  await echoAllAtOnce(messages);
});

for (const serialization of ['advanced', 'json']) test(`${serialization}: empty strings as keys and values, in the first message a fresh child sends`, async () => {
  // The encoder's string memory starts out holding '' with its bytes, so this first echo is written from it.
  const subprocess = fork(fixture('echo.mjs'), [], {serialization});
  const value = {'': '', a: '', list: ['', {'': ''}]};
  assert.deepEqual(await echo(subprocess, value), value);
  subprocess.disconnect();
  await subprocess;
});

for (const serialization of ['advanced', 'json']) test(`${serialization}: a short string value the encoder kept does not keep the long string it was sliced from alive`, async () => {
  // A slice of 13 characters or more is a view into its parent string in V8. The encoder keeps short values
  // that repeat, and must forget them once the code that sent them has run, or 64 MiB stay alive for 20
  // characters.
  const {gc} = await import('./fixtures/r-helpers.mjs');
  const subprocess = fork(fixture('echo.mjs'), [], {serialization});
  const heapUsed = () => {
    gc();
    return v8.getHeapStatistics().used_heap_size;
  };
  const before = heapUsed();
  await (async () => {
    const parent = 'a'.repeat(64 * 1024 * 1024);
    const slice = parent.slice(1000, 1020);
    let last;
    for (let i = 0; i < 4; i++) {
      last = subprocess.sendMessage({i, slice});
    }
    await last;
    for (let i = 0; i < 4; i++) {
      assert.deepEqual(await subprocess.getOneMessage(), {i, slice: 'a'.repeat(20)});
    }
  })();
  const grown = heapUsed() - before;
  assert.ok(grown < 16 * 1024 * 1024, `the heap kept ${(grown / 1048576).toFixed(1)} MiB after the messages went out`);
  subprocess.disconnect();
  await subprocess;
});

test('advanced: the decoder does not keep a large message it read short strings from alive', async () => {
  // The string cache reads words through a DataView kept over the last buffer it read from; a message too large
  // for a batch arrives in a buffer of its own, which the received Buffer below is a view of. Once the message
  // is dropped, that memory must be free to go.
  const {gc} = await import('./fixtures/r-helpers.mjs');
  // buffer: false, or the result's ipcOutput would keep the message.
  const subprocess = fork(fixture('echo.mjs'), [], {buffer: false});
  const memory = await (async () => {
    const reply = await echo(subprocess, {data: Buffer.alloc(8 * 1024 * 1024, 7), words: ['hello world', 'payload']});
    assert.equal(reply.data.length, 8 * 1024 * 1024);
    assert.deepEqual(reply.words, ['hello world', 'payload']);
    return new WeakRef(reply.data.buffer);
  })();
  // A WeakRef holds its target until the turn that made it or read it ends, so collect after that turn.
  for (let i = 0; i < 2; i++) {
    await new Promise(setImmediate);
    gc();
  }
  assert.equal(memory.deref(), undefined, 'the memory of the dropped message is still reachable');
  subprocess.disconnect();
  await subprocess;
});

test('the decoder keeps no source buffer larger than a batch, in either mode', async () => {
  // The channel hands the decoder every batch it reads (codec.useSource) before decoding it; a large message
  // arrives in a buffer of its own. The json decoder never reaches the advanced decoder's reset, so neither
  // the channel's hand-over nor a short string read from such a buffer may keep it.
  const {gc} = await import('./fixtures/r-helpers.mjs');
  const decodeFromLarge = (json) => {
    const large = Buffer.alloc(4 * 1024 * 1024, 0x20);
    large.write(json, 0, 'latin1');
    codec.useSource(large);
    assert.deepEqual(codec.decodeJson(large, 0, json.length), JSON.parse(json));
    return new WeakRef(large);
  };
  // A message of up to 16 bytes goes through the short-string cache, a longer one does not.
  const memory = [decodeFromLarge('"abc"'), decodeFromLarge('{"k":"t","payload":"hello world"}')];
  for (let i = 0; i < 2; i++) {
    await new Promise(setImmediate);
    gc();
  }
  assert.deepEqual(memory.map((ref) => ref.deref() === undefined), [true, true], 'the decoder still holds a large buffer');
});

test('advanced: the details isDeepStrictEqual does not look at', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  const replies = [];
  for (const value of [-0, Buffer.from('buffer'), new Uint8Array([1]), CASES.errors, withHoles(), shared(), cyclic(), CASES.protoKeys, CASES.classInstance, 'a\uD800b']) {
    replies.push(await echo(subprocess, value));
  }
  const [minusZero, buffer, uint8, errors, holes, sharedReply, cycle, proto, point, lone] = replies;
  assert.ok(Object.is(minusZero, -0));
  assert.ok(Buffer.isBuffer(buffer));
  assert.equal(buffer.toString(), 'buffer');
  assert.ok(!Buffer.isBuffer(uint8) && uint8 instanceof Uint8Array);
  assert.deepEqual(
    errors.map((error) => [error.constructor.name, error.name, error.message]),
    CASES.errors.map((error) => [error.constructor.name, error.name, error.message]),
  );
  assert.equal(errors.at(-1).cause.message, 'inner');
  assert.ok(errors.at(-1).cause instanceof TypeError);
  assert.equal(typeof errors[0].stack, 'string');
  assert.equal(holes.length, 5);
  assert.equal(1 in holes, false);
  assert.equal(sharedReply.a, sharedReply.b);
  assert.equal(sharedReply.list[0], sharedReply.a);
  assert.equal(cycle.self, cycle);
  assert.equal(cycle.children[0].parent, cycle);
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepEqual(Object.keys(proto), ['__proto__', 'constructor', 'prototype']);
  assert.equal({}.polluted, undefined);
  assert.equal(Object.getPrototypeOf(point), Object.prototype);
  assert.equal(lone, 'a\uD800b');
  subprocess.disconnect();
  await subprocess;
});

test('advanced: named properties on arrays with and without holes arrive, as structured clone keeps them', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  const match = 'native-ipc'.match(/(?<word>ipc)/);
  const dense = Object.assign([1, {two: 2}, 3], {label: 'extra', nested: [4]});
  const holey = withHoles();
  holey.label = 'with holes';
  // A hole and a named property leave the key count unchanged: both must still be seen.
  // eslint-disable-next-line no-sparse-arrays
  const balanced = Object.assign([1, , 3], {label: 'balanced'});
  for (const value of [match, dense, holey, balanced]) {
    const reply = await echo(subprocess, value);
    const expected = structuredClone(value);
    assert.ok(Array.isArray(reply));
    assert.equal(reply.length, expected.length);
    assert.deepEqual(Object.keys(reply), Object.keys(expected));
    assert.deepStrictEqual({...reply}, {...expected});
  }
  subprocess.disconnect();
  await subprocess;
});

test('json: every case arrives as JSON.parse(JSON.stringify()) makes it', async () => {
  const subprocess = fork(fixture('echo.mjs'), [], {serialization: 'json'});
  const jsonable = {
    ...CASES,
    undefined: undefined,
    bigints: undefined,
    boxed: [Object(1), Object('s'), Object(true)],
    cyclic: undefined,
    toJSON: {toJSON: () => 'custom'},
    dateString: new Date(0),
  };
  for (const [name, value] of Object.entries(jsonable)) {
    if (value === undefined || name === 'typedArrays') {
      continue;
    }
    const reply = await echo(subprocess, value);
    assert.deepEqual(reply, JSON.parse(JSON.stringify(value)), name);
  }
  subprocess.disconnect();
  await subprocess;
});

test('json: cycles and BigInt are refused, like JSON.stringify', async () => {
  for (const value of [cyclic(), {n: 1n}]) {
    const subprocess = fork(fixture('echo.mjs'), [], {serialization: 'json'});
    await assert.rejects(subprocess.sendMessage(value), {
      code: 'ERR_IPC_UNSERIALIZABLE',
      message: /sendMessage\(\)'s argument type is invalid: the message cannot be serialized/,
    });
    await subprocess;
  }
});

test('advanced: what structured clone refuses is refused with the path of the offending value', async () => {
  const cases = [
    [{jobs: [{}, {}, {run() {}}]}, /message\.jobs\[2\]\.run is a function/],
    [Symbol('s'), /message is a symbol/],
    [{p: Promise.resolve()}, /message\.p is a Promise/],
    [{w: new WeakMap()}, /message\.w is a WeakMap/],
    [{['odd key']: () => {}}, /message\["odd key"\] is a function/],
  ];
  for (const [value, pattern] of cases) {
    const subprocess = fork(fixture('echo.mjs'));
    await assert.rejects(subprocess.sendMessage(value), (error) => {
      assert.equal(error.code, 'ERR_IPC_UNSERIALIZABLE');
      assert.match(error.cause.message, pattern);
      return true;
    });
    const {ipcOutput} = await subprocess;
    assert.deepEqual(ipcOutput, []);
  }
});

for (const [name, hex, pattern] of [
  // MESSAGE frame whose payload is fixext1 with an unknown extension type 99.
  ['an unknown extension type', '0300000002d46300', /extension|ext/i],
  // MESSAGE frame: ext8 of type BIGINT (2) claiming 200 bytes but carrying 1.
  ['a truncated extension payload', '0400000002c7c80201', /ERR_IPC_BAD_PAYLOAD|truncated|past the end|length/i],
  // MESSAGE frame: array32 claiming 4 billion elements in 5 bytes.
  ['an array header claiming 4 billion elements', '0500000002ddffffffff', /array|length|elements/i],
]) {
  test(`a peer's ${name} closes the channel with a clear error and allocates nothing of that size`, async () => {
    const subprocess = spawn(process.execPath, [fileURLToPath(fixture('raw-peer.cjs')), hex], {ipc: true, stdio: 'inherit'});
    const before = process.memoryUsage().rss;
    await assert.rejects(subprocess.getOneMessage(), (error) => {
      assert.match(error.message, /^The IPC channel with the subprocess failed: /);
      assert.match(`${error.message} ${error.cause?.code}`, pattern);
      return true;
    });
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024);
    const {ok} = await settle(subprocess);
    assert.equal(ok, false);
  });
}

// Binaries of 64 KiB or more are written from the sender's memory rather than copied into the coalescing
// buffer: their frame and container lengths count bytes that are not in that buffer, and a header that
// shrinks or grows after them moves their place. Each shape that does so goes through a real child.
const bytes = (n, seed) => {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
};

test('advanced: large binaries in every container arrive intact, as the V8 serializer makes them', async () => {
  const big = bytes(300 * 1024, 1);
  const manyKeys = {};
  for (let i = 0; i < 20; i++) manyKeys[`k${i}`] = i === 3 ? big : i;   // map header rewritten after the binary
  // eslint-disable-next-line no-sparse-arrays
  const holeAfter = [bytes(70 * 1024, 2), , 'x'];                          // restarted as a sparse array
  const error = new Error('with a binary cause', {cause: bytes(65536, 3)});
  const floats = new Float64Array(20000).map((_, i) => i / 3);
  const cases = [
    big,
    {id: 1, data: big, tail: 'after'},
    manyKeys,
    holeAfter,
    new Map([['a', bytes(100000, 4)], [bytes(65536, 5), 'binary key']]),
    new Set([bytes(65536, 6), 'x']),
    error,
    [floats, new Uint8Array(bytes(90000, 7)), new DataView(bytes(80000, 8).buffer), bytes(70000, 9).buffer],
    {same: big, again: big},
    [bytes(65535, 10), bytes(65536, 11)],
  ];
  const subprocess = fork(fixture('echo.mjs'));
  const replies = [];
  for (const value of cases) {
    replies.push(await echo(subprocess, value));
  }
  // v8.deserialize(v8.serialize()) is the oracle here: it keeps a Buffer a Buffer, as native-ipc does.
  for (const [i, value] of cases.entries()) {
    assert.ok(isDeepStrictEqual(replies[i], v8.deserialize(v8.serialize(value))), `case ${i}`);
  }
  assert.equal(replies[8].same, replies[8].again);
  assert.ok(replies[6].cause instanceof Uint8Array);
  subprocess.disconnect();
  await subprocess;
});

test('advanced: a large Buffer changed right after sendMessage() returns arrives as it was when sent', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  const buffer = bytes(4 * 1024 * 1024, 12);
  const expected = Buffer.from(buffer);
  const sent = subprocess.sendMessage({buffer});
  buffer.fill(0);   // before the kernel can have taken 4 MiB
  const [reply] = await Promise.all([subprocess.getOneMessage(), sent]);
  assert.ok(reply.buffer.equals(expected));
  subprocess.disconnect();
  await subprocess;
});

test('advanced: a strict send of a large binary arrives and is acknowledged', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  const buffer = bytes(1024 * 1024, 13);
  const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(buffer, {strict: true})]);
  assert.ok(reply.equals(buffer));
  subprocess.disconnect();
  await subprocess;
});

// Long strings (64 KiB or more) are decoded as external strings over the received bytes where Node allows it:
// they must keep those bytes alive and unchanged, through garbage collections and later messages.
test('advanced: long ASCII, Latin-1 and UTF-16 strings, at even and odd offsets, stay intact after GC and later messages', async () => {
  const {gc, settleMemory} = await import('./fixtures/r-helpers.mjs');
  const ascii = 'native-ipc '.repeat(12000);                  // 132 KB, ASCII: latin1 external string
  const latin1 = 'caf\u00e9 cr\u00e8me \u00ff'.repeat(10000);   // one byte per character, not ASCII: LATIN1
  const utf16 = 'wörld ✓ \ud800 '.repeat(8000);               // non-ASCII, lone surrogate: STRING16
  const cases = [ascii, latin1, utf16, {odd: 'x', utf16}, {o: 'xx', utf16}, {odd: 'x', latin1}, [ascii, ascii.slice(1)], [latin1, latin1.slice(1)]];
  const subprocess = fork(fixture('echo.mjs'));
  const replies = [];
  for (const value of cases) {
    replies.push(await echo(subprocess, value));
    gc();
  }
  // Large messages after them reuse memory if the strings did not keep theirs.
  for (let i = 0; i < 3; i++) {
    await echo(subprocess, Buffer.alloc(2 * 1024 * 1024, 0x41 + i));
  }
  await settleMemory();
  for (const [i, value] of cases.entries()) {
    assert.ok(isDeepStrictEqual(replies[i], value), `case ${i}`);
  }
  subprocess.disconnect();
  await subprocess;
});

for (const serialization of ['advanced', 'json']) test(`${serialization}: long strings a child sends on while the parent is not reading arrive intact and in order`, async () => {
  // relay.mjs sends each string on from the frame it arrived in (lib/codec.js relayed(), and jRelayed() with
  // its quotes in json mode); with the parent not reading, the kernel takes little of each at once, and the rest
  // waits in the child: lent from that frame when the string ends the batch and nothing else waits, copied
  // behind it otherwise.
  const MiB = 1024 * 1024;
  const big = (c) => c.repeat(6 * MiB - 1) + '!';
  // Latin-1 text as well: LATIN1 values in 'advanced' mode, UTF-8 in JSON text.
  const cases = [big('a'), 'small', {last: big('b')}, {first: big('c'), n: 2}, [big('d'), big('d')], big('e'), big('\u00e9'), {last: big('\u00fc')}];
  const subprocess = fork(fixture('relay.mjs'), [], {serialization});
  const replies = [];
  const iterator = subprocess.getEachMessage()[Symbol.asyncIterator]();
  // Once the child listens, each message is sent on in the turn it arrives in.
  await subprocess.sendMessage('ready');
  assert.equal((await iterator.next()).value, 'ready');
  await Promise.all(cases.map((value) => subprocess.sendMessage(value)));
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let i = 0; i < cases.length; i++) {
    replies.push((await iterator.next()).value);
  }
  for (const [i, value] of cases.entries()) {
    assert.ok(isDeepStrictEqual(replies[i], value), `case ${i}`);
  }
  subprocess.disconnect();
  await subprocess;
});

// The buffers a large message is received into, and the encoder's buffers for large values, are advised for
// transparent huge pages before their first write (src/memory.rs): a fresh 16 MiB then faults in as 8 pages of
// 2 MiB instead of 4096. Whether the kernel finds free huge pages at that moment depends on the machine, so
// the test checks the advice itself: mappings marked `hg` in /proc/<pid>/smaps, over three large messages,
// each process keeping them all. (Under load, a receive used to go on reading after completing a large frame,
// and growing its buffer made glibc copy the frame into unadvised memory: src/channel.rs read_available.)
const hugePagesAvailable = () => {
  try {
    readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8');
    return true;
  } catch {
    return false;
  }
};

test('advanced: large messages are received into memory advised for huge pages, and so are their copies back', {
  skip: hugePagesAvailable() ? false : 'this kernel has no transparent huge pages',
}, () => {
  const output = execFileSync(process.execPath, [fileURLToPath(fixture('s-huge-pages-parent.mjs'))], {encoding: 'utf8'});
  const {intact, child, parent, kept} = JSON.parse(output);
  assert.equal(intact, true, 'every echo equals what was sent');
  assert.equal(kept, 3);
  // Each process received 3 × 16 MiB into buffers advised for huge pages (strings are views of them).
  assert.ok(child >= 16 * 1024 * 1024, `child: ${child} more bytes advised after receiving 3 × 16 MiB`);
  assert.ok(parent >= 16 * 1024 * 1024, `parent: ${parent} more bytes advised after 3 × 16 MiB echoes`);
});

test('a long string received and let go takes its memory along within two collections, in both modes', async () => {
  const size = 8 * 1024 * 1024;
  for (const serialization of ['advanced', 'json']) {
    const subprocess = fork(fixture('s-long-string.mjs'), [], {serialization, execArgv: ['--expose-gc']});
    assert.equal(await subprocess.getOneMessage(), 'ready');
    await subprocess.sendMessage('native-ipc '.repeat(size / 8).slice(0, size));
    const {length, before, held, after} = await subprocess.getOneMessage();
    await subprocess;
    assert.equal(length, size);
    assert.ok(held - before >= size, `${serialization}: ${held - before} bytes more while it lived`);
    // The string once kept its batch's Buffer by a reference, deleted by its finalizer after the collection
    // that found it dead; the Buffer's memory went in a later one, and V8 counts a Buffer's memory until the
    // collection after that: two collections left 8 MiB.
    assert.ok(after - before < size / 8, `${serialization}: ${after - before} bytes still held after two collections`);
  }
});
