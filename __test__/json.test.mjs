// serialization: 'json' against JSON itself, through real channels: the encoder writes JSON.stringify's text
// byte for byte and runs the same user code in the same order; the decoder gives what JSON.parse gives, and
// refuses what JSON.parse refuses with JSON.parse's message. (lib/codec.js has its own JSON encoder and
// parser: JSON.stringify built a string that was then encoded again, JSON.parse read a string decoded first.)
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {inspect, isDeepStrictEqual} from 'node:util';
import {fork, spawn, fixture, settle} from './helpers.mjs';
import {KIND, collect, fixturePath, frame, hello, rawPeer} from './fixtures/r-helpers.mjs';

/** A seeded generator, so that a failure can be replayed. */
const random = (seed) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};

/** Strings from alphabets that need every kind of escape, non-ASCII and surrogates, at lengths around the
 * encoder's and decoder's thresholds (32, 64, 256 bytes, 64 KiB). */
const makeString = (next) => {
  const alphabets = ['abc xyz', 'a"\\\n\t\b\f\r\u0000\u0001\u001f\u007f/', '\u00e9\u20ac\u{1f600}', '\ud800x\udfffy\udbff', 'job-42.'];
  const alphabet = [...alphabets[Math.floor(next() * alphabets.length)]];
  const lengths = [0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000, 70_000];
  const length = lengths[Math.floor(next() * lengths.length)];
  let text = '';
  while (text.length < length) text += alphabet[Math.floor(next() * alphabet.length)];
  return text;
};

const NUMBERS = [0, -0, 1, -1, 9, 10, 12_345, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, 1e15, 1e21, 1e-6, 1e-7,
  0.1, 0.25, 1 / 3, 4.35, -1.5e300, 5e-324, Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];

const makeNumber = (next) => {
  const pick = next();
  if (pick < 0.3) return NUMBERS[Math.floor(next() * NUMBERS.length)];
  if (pick < 0.5) return Math.round(next() * 1e6) / 100;
  if (pick < 0.7) return (next() - 0.5) * 10 ** Math.floor(next() * 50 - 25);
  const bits = new Uint32Array([next() * 2 ** 32, next() * 2 ** 32]);
  return new Float64Array(bits.buffer)[0];
};

class Point {
  constructor() {
    this.x = 1;
    this.y = [2];
  }
}

const ODD = [
  () => new Date(1_700_000_000_000),
  () => Object(3.5),
  () => Object('boxed "text"'),
  () => Object(false),
  () => ({toJSON: (key) => `key=${key}`}),
  () => new Map([[1, 2]]),
  () => new Set([1]),
  () => /re/g,
  () => Buffer.from('hi'),
  () => new Uint8Array([1, 2]),
  () => Object.create(null),
  () => new Point(),
  () => undefined,
  () => () => 1,
  () => Symbol('s'),
  () => new Proxy({a: 1, b: [true]}, {}),
  () => ({get computed() { return 'from a getter'; }}),
];

const KEYS = ['a', 'k', 'payload', 'with space', '\u00e9', '"quoted"', '\n', '0', '12', '__proto__', 'a-much-longer-key-than-the-cache-holds', ''];

const makeValue = (next, depth = 0) => {
  const pick = next();
  if (depth > 3 || pick < 0.35) {
    const leaf = next();
    if (leaf < 0.4) return makeString(next);
    if (leaf < 0.8) return makeNumber(next);
    return [true, false, null][Math.floor(next() * 3)];
  }
  if (pick < 0.45) return ODD[Math.floor(next() * ODD.length)]();
  if (pick < 0.7) return Array.from({length: Math.floor(next() * 6)}, () => makeValue(next, depth + 1));
  const object = {};
  for (let i = Math.floor(next() * 7); i > 0; i--) {
    const key = KEYS[Math.floor(next() * KEYS.length)];
    Object.defineProperty(object, key, {value: makeValue(next, depth + 1), enumerable: true, writable: true, configurable: true});
  }
  return object;
};

const corpus = (seed, count) => {
  const next = random(seed);
  const values = [];
  while (values.length < count) {
    const value = makeValue(next);
    if (JSON.stringify(value) !== undefined) values.push(value);
  }
  return values;
};

test('json: the encoder writes JSON.stringify\'s text byte for byte (a raw peer reads the frames)', async () => {
  const values = [
    ...corpus(1, 1500),
    'x'.repeat(70_000),
    `${'x'.repeat(300)}"${'y'.repeat(70_000)}\n`,
    '\u00e9'.repeat(5000),
    `lone ${'\ud800'.repeat(40)} surrogates`,
    Array.from({length: 1000}, (_, i) => i * 0.75 - 300),
    Array.from({length: 1200}, (_, i) => (i % 7 === 0 ? -i : i)),
    // Buffers, whose JSON text the encoder writes from their bytes while Buffer.prototype.toJSON is Node's own.
    Buffer.alloc(0),
    {bytes: Buffer.from([0, 9, 10, 99, 100, 255]), list: [Buffer.from('hi'), new Uint8Array([1, 2])]},
    Buffer.from(Array.from({length: 100_000}, (_, i) => (i * 7) & 255)),
    Object.assign(Buffer.from([1, 2, 3]), {toJSON: () => 'its own toJSON'}),
    Object.defineProperty(Buffer.from([1, 2, 3]), 'length', {get: () => 2}),
  ];
  const subprocess = spawn(process.execPath, [fixturePath('v-raw-echo.cjs')], {ipc: true, serialization: 'json', stdio: ['pipe', 'pipe', 'inherit']});
  const output = collect(subprocess.stdout);
  subprocess.stdin.end(hello({s: 'json'}));
  for (const value of values) {
    await subprocess.sendMessage(value);
  }
  subprocess.disconnect();
  const lines = (await output.end).trim().split('\n');
  assert.equal((await subprocess).exitCode, 0);
  assert.equal(lines.length, 1 + values.length, 'the handshake and one frame a message');
  const problems = [];
  values.forEach((value, index) => {
    const [kind, hex] = lines[1 + index].split(' ');
    const wanted = Buffer.from(JSON.stringify(value)).toString('hex');
    if (kind !== String(KIND.message) || hex !== wanted) {
      problems.push(`value ${index} ${inspect(value, {depth: 1}).slice(0, 100)}: wrote ${Buffer.from(hex ?? '', 'hex').toString().slice(0, 200)}`);
    }
  });
  assert.deepEqual(problems, []);
});

test('json: random values through an echo child, both ways, arrive as JSON.parse(JSON.stringify()) makes them', async () => {
  const subprocess = fork(fixture('echo.mjs'), [], {serialization: 'json'});
  const values = corpus(2, 1500);
  const replies = subprocess.getEachMessage()[Symbol.asyncIterator]();
  const problems = [];
  // In bursts, so that messages share batches on both sides.
  for (let at = 0; at < values.length; at += 50) {
    const burst = values.slice(at, at + 50);
    for (const value of burst) subprocess.sendMessage(value);
    for (const [offset, value] of burst.entries()) {
      const {value: reply} = await replies.next();
      const wanted = JSON.parse(JSON.stringify(value));
      if (!isDeepStrictEqual(reply, wanted)) problems.push(`value ${at + offset}: ${inspect(reply, {depth: 2}).slice(0, 200)}`);
    }
  }
  subprocess.disconnect();
  await subprocess;
  assert.deepEqual(problems, []);
});

test('json: toJSON, getters and a Proxy\'s traps run as JSON.stringify runs them: once each, in its order, with its keys', async () => {
  const build = (log) => {
    const target = {first: 1, nested: {deep: [1, 2]}, last: 'z'};
    Object.defineProperty(target, 'hidden', {value: 'not enumerable', enumerable: false});
    const traps = {};
    for (const trap of ['get', 'has', 'ownKeys', 'getOwnPropertyDescriptor', 'getPrototypeOf']) {
      traps[trap] = (...args) => {
        log.push(`${trap} ${typeof args[1] === 'symbol' ? args[1].toString() : args[1] ?? ''}`);
        return Reflect[trap](...args);
      };
    }
    return {
      a: {toJSON(key) { log.push(`toJSON ${key}`); return {again: {toJSON: (inner) => { log.push(`inner toJSON ${inner}`); return 'x'; }}}; }},
      list: [{toJSON: (key) => { log.push(`element toJSON ${typeof key} ${key}`); return undefined; }}],
      get b() { log.push('getter b'); return 2; },
      proxy: new Proxy(target, traps),
      arrayProxy: new Proxy([1, 2], traps),
      date: new Date(0),
    };
  };
  const wantedLog = [];
  const wanted = JSON.stringify(build(wantedLog));
  const subprocess = fork(fixture('echo.mjs'), [], {serialization: 'json'});
  const log = [];
  const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(build(log))]);
  subprocess.disconnect();
  await subprocess;
  assert.deepEqual(log, wantedLog);
  assert.deepEqual(reply, JSON.parse(wanted));
});

const DEEP = 20_000;
const DEEP_TEXT = `${'['.repeat(DEEP)}${']'.repeat(DEEP)}`;

/** The depth of nested one-element arrays ending in an empty one, walked (isDeepStrictEqual would overflow). */
const nesting = (value) => {
  let depth = 0;
  for (; Array.isArray(value) && value.length === 1; depth++) value = value[0];
  return Array.isArray(value) && value.length === 0 ? depth + 1 : -1;
};

/** Texts as another peer may write them: whitespace, every escape, numbers in every form, duplicate keys. */
const TEXTS = [
  ' {"a" : 1 ,\n\t"b":[ 1 , 2 ] }\r\n',
  '{"__proto__": {"polluted": true}, "x": 1}',
  '{"a": 1, "b": 2, "a": 3}',
  '{"1": "one", "0": "zero", "b": "b"}',
  '"\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001F\\u00e9\\u20AC"',
  '"\\ud83d\\ude00 pair, lone \\ud800 and \\udc00"',
  '"raw \u00e9\u20ac\u{1f600} UTF-8"',
  `"${'a'.repeat(300)}\\n${'b'.repeat(300)}"`,
  `"${'long '.repeat(20_000)}"`,
  `"${'x'.repeat(70_000)}\\t${'\u00e9'.repeat(40_000)}"`,
  // Text that starts with a character of three UTF-8 bytes, from 256 bytes read by the addon: CJK, an astral
  // character, Latin-1 and ASCII after it, and a BOM.
  `["${'\u65e5\u672c\u8a9e\u306e\u6587\u7ae0\u3002'.repeat(40)}", "${'\u3042'.repeat(85)}\ud83d\ude80 caf\u00e9 ok", "\ufeff${'\u4e2d'.repeat(100)}"]`,
  '-0', '-0.0', '0', '1E5', '1e+5', '1e-5', '1.5e-3', '-12.75', '1e400', '-1e400', '1e-400', '123456789012345678901',
  '9007199254740993', '-9007199254740993', '5e-324', '2.2250738585072014e-308', '0.1', '0.30000000000000004', '123456789012345',
  '1234567890123456', '4.35', '1e22', '1e23', '12e-22', '1.0', '100',
  'true', 'false', 'null', '[]', '{}', ' [ ] ', '[[[[{}]]]]', '{"a":[{"b":null,"c":[true,false]}]}',
  // Deeper than the parser's recursion reaches: JSON.parse takes it.
  DEEP_TEXT,
  `[${Array.from({length: 500}, (_, i) => (i % 3 === 0 ? i : i % 3 === 1 ? -i / 8 : `"s${i}"`)).join(',')}]`,
];

test('json: texts another peer writes (whitespace, escapes, every number form, duplicate keys) decode as JSON.parse decodes them', async () => {
  const subprocess = spawn(process.execPath, [fixturePath('v-raw-echo.cjs')], {ipc: true, serialization: 'json', stdio: ['pipe', 'pipe', 'inherit']});
  const output = collect(subprocess.stdout);
  subprocess.stdin.end(Buffer.concat([hello({s: 'json'}), ...TEXTS.map((text) => frame(KIND.message, Buffer.from(text)))]));
  const problems = [];
  let index = 0;
  for await (const message of subprocess.getEachMessage()) {
    if (TEXTS[index] === DEEP_TEXT) {
      if (nesting(message) !== DEEP) problems.push(`${DEEP} nested arrays arrived as ${nesting(message)} levels`);
      index++;
      continue;
    }
    const wanted = JSON.parse(TEXTS[index]);
    const same = isDeepStrictEqual(message, wanted) && Object.is(message, wanted) === (typeof wanted !== 'object' || wanted === null);
    if (!same) problems.push(`${TEXTS[index].slice(0, 60)}: ${inspect(message, {depth: 2}).slice(0, 100)}`);
    if (wanted !== null && typeof wanted === 'object' && !Array.isArray(wanted)) {
      if (!isDeepStrictEqual(Object.keys(message), Object.keys(wanted))) problems.push(`${TEXTS[index]}: keys ${Object.keys(message)}`);
      if (Object.getPrototypeOf(message) !== Object.prototype) problems.push(`${TEXTS[index]}: the prototype was changed`);
    }
    if (++index === TEXTS.length) break;
  }
  subprocess.disconnect();
  await output.end;
  await subprocess;
  assert.equal(index, TEXTS.length);
  assert.deepEqual(problems, []);
});

const MALFORMED = [
  '01', '-', '+1', '.5', '1.', '1e', '1e+', '-a', '[1,]', '[1 2]', '{"a":1,}', '{"a" 1}', '{a: 1}', "{'a': 1}", '{"a":1', '[',
  'tru', 'nul', 'falsy', 'truex', '"\\x"', '"\\u00ZZ"', '"\\u12"', '"unterminated', `"${'a'.repeat(300)}`, '"tab\tinside"',
  `"${'b'.repeat(300)}\u0001"`, '\ufeff1', '', ' ', '1 2', '[] x', 'NaN', 'Infinity', '"a"b',
];

test('json: malformed texts are refused with ERR_IPC_BAD_PAYLOAD and JSON.parse\'s own message, invalid UTF-8 as such', async () => {
  const cases = [
    ...MALFORMED.map((text) => [Buffer.from(text), `bad JSON: ${(() => { try { JSON.parse(text); } catch (error) { return error.message; } return assert.fail(`${text} parses`); })()}`]),
    [Buffer.from([0x22, 0x61, 0xff, 0x22]), 'string is not valid UTF-8'],
    [Buffer.concat([Buffer.from('{"key\u00e9":'), Buffer.from([0xc3]), Buffer.from('"}')]), 'string is not valid UTF-8'],
    [Buffer.concat([Buffer.from(`["${'a'.repeat(400)}`), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"]')]), 'string is not valid UTF-8'],
    // From 256 bytes, text that starts with a character of three bytes is read by the addon: cut, lone, overlong.
    ...[[0xe6, 0x97], [0x80], [0xc0, 0xaf]].map((bad) => [
      Buffer.concat([Buffer.from(`"${'\u65e5'.repeat(100)}`), Buffer.from(bad), Buffer.from('"')]),
      'string is not valid UTF-8',
    ]),
  ];
  const problems = [];
  await Promise.all(cases.map(async ([bytes, message]) => {
    const subprocess = rawPeer(Buffer.concat([hello({s: 'json'}), frame(KIND.message, bytes)]), 'hold', {serialization: 'json'});
    const outcome = await subprocess.getOneMessage().then((value) => ({value}), (error) => ({error}));
    if (outcome.error === undefined) problems.push(`${bytes.toString().slice(0, 40)}: decoded to ${inspect(outcome.value)}`);
    else if (outcome.error.code !== 'ERR_IPC_BAD_PAYLOAD' || !outcome.error.message.endsWith(`: Invalid IPC payload: ${message}`)) {
      problems.push(`${bytes.toString().slice(0, 40)}: ${outcome.error.code} ${outcome.error.message}, expected ${message}`);
    }
    await settle(subprocess);
  }));
  assert.deepEqual(problems, []);
});

test('json: a refused value names where it is: a cycle and a BigInt, at their paths', async () => {
  const cyclic = {a: {list: [1]}};
  cyclic.a.list.push(cyclic.a);
  for (const [value, pattern] of [
    [cyclic, /^message\.a\.list\[1\] refers back to an object that contains it: JSON cannot hold a circular structure/],
    [{jobs: [{id: 1n}]}, /^message\.jobs\[0\]\.id is a BigInt, which JSON cannot hold .*serialization: 'advanced' carries it$/],
  ]) {
    const subprocess = fork(fixture('echo.mjs'), [], {serialization: 'json'});
    await assert.rejects(subprocess.sendMessage(value), (error) => {
      assert.equal(error.code, 'ERR_IPC_UNSERIALIZABLE');
      assert.match(error.cause.message, pattern);
      return true;
    });
    subprocess.disconnect();
    await subprocess;
  }
});
