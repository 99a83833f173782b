// ipc-reliability.md §5 D 28 and E 32, as properties over thousands of random inputs: the value codec never
// throws anything but its typed ERR_IPC_BAD_PAYLOAD on bad bytes, and gives back what was encoded on good ones;
// then a sample of mutated frames goes through real raw-peer processes, which must never crash the parent.
// The inputs come from a seeded generator: a failure names its seed and case, so it can be replayed.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import codec from '../lib/codec.js';
import native from '../lib/native.js';
import {KIND, frame, hello, rawPeer} from './fixtures/r-helpers.mjs';
import {settle} from './helpers.mjs';

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
// As lib/channel.js sets the codec up: the addon scans long JSON strings and reads UTF-8 that starts with a
// character of three bytes, so random bytes reach it too.
codec.useJsonNative(native);

/** mulberry32: a small, fast, seeded generator of floats in [0, 1). */
const generator = (seed) => {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

const makeRandom = (seed) => {
  const next = generator(seed);
  const int = (n) => Math.floor(next() * n);
  const pick = (list) => list[int(list.length)];
  const bytes = (n) => Buffer.from(Array.from({length: n}, () => int(256)));
  return {next, int, pick, bytes};
};

const STRINGS = ['', 'a', 'héllo', '𝄞 clef', 'ß'.repeat(33), 'x'.repeat(300), '\u2028\0\n', '\ud800 lone', 'tail \udfff', '__proto__', 'constructor'];
const NUMBERS = [0, -0, 1, -1, 127, 128, 255, 256, -33, 65535, 2 ** 31, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 53, 0.5, -1.25e-300, NaN, Infinity, -Infinity];

/**
 * A string of 32 characters or more (the encoder's forms for them: str, LATIN1, STRING16, by length and by how
 * many characters are not ASCII) drawn from ASCII, from ASCII and Latin-1, or from those with one character beyond
 * U+00FF or a lone surrogate somewhere.
 */
const longString = ({int, pick}) => {
  const length = pick([32 + int(4064), 4096 + int(pick([8, 70_000]))]);
  // Characters from U+0080 to U+00FF: none, rare, some or half of them.
  const every = pick([0, 300, 20, 2]);
  const cjk = pick([false, false, false, true]);
  const units = Array.from({length}, () => (cjk ? 0x4e00 + int(0x5000) : every !== 0 && int(every) === 0 ? 0x80 + int(0x80) : int(0x80)));
  if (pick([false, true])) units[int(length)] = pick([0x20ac, 0xd800, 0x100]);
  let text = '';
  for (let i = 0; i < length; i += 4096) text += String.fromCharCode(...units.slice(i, i + 4096));
  return text;
};

/**
 * A random value of the structured-clone set, `depth` levels deep at most, sometimes with a cycle. (No invalid
 * Date: assert.deepStrictEqual never finds two of them equal; one is checked on its own below.)
 */
const randomValue = (random, depth = 4) => {
  const {int, pick, next} = random;
  const leaf = () =>
    pick([
      () => pick(NUMBERS),
      () => (next() - 0.5) * 10 ** int(20),
      () => int(2 ** 31) - 2 ** 30,
      () => (next() < 0.1 ? longString(random) : pick(STRINGS)),
      () => String.fromCharCode(...Array.from({length: int(20)}, () => int(0x10000))),
      () => BigInt(int(2 ** 31)) * BigInt(int(2 ** 31)) * (next() < 0.5 ? -1n : 1n),
      () => pick([true, false, null, undefined]),
      () => new Date(int(2 ** 40)),
      () => /a+b?[c-d]/giu,
      () => random.bytes(int(40)),
      () => new Uint16Array([int(65536), int(65536)]),
      () => new Float64Array([next(), -0, NaN]),
      () => new BigInt64Array([-1n, 2n ** 62n]),
      () => new Int8Array(random.bytes(int(9))),
      () => new Uint8Array(random.bytes(int(8))).buffer,
      () => new TypeError(pick(STRINGS)),
    ])();
  if (depth === 0 || next() < 0.35) {
    return leaf();
  }
  const child = () => randomValue(random, depth - 1);
  const container = pick([
    () => Array.from({length: int(6)}, child),
    () => {
      const sparse = [];
      sparse[int(5) + 2] = child();
      return sparse;
    },
    () => Object.fromEntries(Array.from({length: int(6)}, () => [pick([...STRINGS, 'k1', 'k2', '0', '17']), child()])),
    () => new Map(Array.from({length: int(4)}, () => [child(), child()])),
    () => new Set(Array.from({length: int(4)}, child)),
  ])();
  if (next() < 0.1 && typeof container === 'object' && !Array.isArray(container) && !(container instanceof Map) && !(container instanceof Set)) {
    container.self = container;
  }
  return container;
};

/** A random value JSON can carry exactly. */
const randomJson = (random, depth = 4) => {
  const {int, pick, next} = random;
  if (depth === 0 || next() < 0.4) {
    return pick([() => int(1e6) - 5e5, () => next() * 1e10, () => pick(STRINGS.filter((s) => s.isWellFormed())), () => pick([true, false, null])])();
  }
  return next() < 0.5
    ? Array.from({length: int(5)}, () => randomJson(random, depth - 1))
    : Object.fromEntries(Array.from({length: int(5)}, () => [pick(['a', 'b', 'ü', 'long key', '1']), randomJson(random, depth - 1)]));
};

/** Mutates encoded bytes: flips, truncates, inserts or duplicates, once or a few times. */
const mutate = (random, input) => {
  let bytes = Buffer.from(input);
  for (let round = 0, rounds = 1 + random.int(3); round < rounds; round++) {
    const at = random.int(bytes.length + 1);
    switch (random.int(4)) {
      case 0:
        if (bytes.length > 0) {
          bytes[Math.min(at, bytes.length - 1)] = random.int(256);
        }
        break;
      case 1:
        bytes = bytes.subarray(0, at);
        break;
      case 2:
        bytes = Buffer.concat([bytes.subarray(0, at), random.bytes(1 + random.int(4)), bytes.subarray(at)]);
        break;
      default:
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(random.int(bytes.length + 1))]);
    }
  }
  return bytes;
};

// A message from the engine itself (rather than the codec's own wording) means a decoder bug that the
// catch-all turned into a payload error.
const ENGINE_ERROR = /Cannot read prop|is not a function|is not defined|is not iterable|Invalid (typed )?array length|allocation failed|Invalid string length|out of memory/i;

/** Decodes `bytes`, which may be anything: a value, or the codec's typed error and nothing else. */
const decodeOrRefuse = (decode, bytes, label) => {
  try {
    return {value: decode(bytes, 0, bytes.length)};
  } catch (error) {
    assert.ok(error instanceof Error, `${label}: threw a non-Error`);
    assert.equal(error.code, 'ERR_IPC_BAD_PAYLOAD', `${label}: ${error.stack}`);
    assert.match(error.message, /^Invalid IPC payload: /, label);
    assert.doesNotMatch(error.message, ENGINE_ERROR, label);
    return {error};
  }
};

/** `value` encoded for a peer that takes LATIN1 (as a native-ipc peer does) when `latin1`. */
const encode = (encoder, value, latin1 = false) => {
  const writer = new codec.Writer(256);
  writer.peerLatin1 = () => latin1;
  encoder(writer, value);
  return Buffer.from(writer.buf.subarray(0, writer.pos));
};

test(`D28: 20k random byte strings: decodeAdvanced and decodeJson return a value or ERR_IPC_BAD_PAYLOAD, nothing else (seed ${SEED})`, () => {
  const random = makeRandom(SEED);
  let refused = 0;
  for (let i = 0; i < 20_000; i++) {
    const bytes = random.bytes(i % 10 === 0 ? random.int(4096) : random.int(48));
    if (decodeOrRefuse(codec.decodeAdvanced, bytes, `advanced case ${i}`).error) {
      refused++;
    }
    decodeOrRefuse(codec.decodeJson, bytes, `json case ${i}`);
  }
  // Random bytes are mostly invalid: a decoder that accepted everything would be broken too.
  assert.ok(refused > 10_000);
});

test(`E32, D28: 3000 random structured-clone values round-trip; 9000 mutations of them decode or are refused cleanly (seed ${SEED})`, () => {
  const random = makeRandom(SEED + 1);
  for (let i = 0; i < 3000; i++) {
    const value = randomValue(random);
    const bytes = encode(codec.encodeAdvanced, value, i % 2 === 0);
    assert.deepStrictEqual(codec.decodeAdvanced(bytes, 0, bytes.length), value, `case ${i}`);
    for (let m = 0; m < 3; m++) {
      decodeOrRefuse(codec.decodeAdvanced, mutate(random, bytes), `case ${i} mutation ${m}`);
    }
  }
  const invalid = encode(codec.encodeAdvanced, new Date(Number.NaN));
  const decoded = codec.decodeAdvanced(invalid, 0, invalid.length);
  assert.ok(decoded instanceof Date && Number.isNaN(decoded.getTime()));
});

test(`E34, D25: 3000 random JSON values round-trip in json mode; 9000 mutations decode or are refused cleanly (seed ${SEED})`, () => {
  const random = makeRandom(SEED + 2);
  for (let i = 0; i < 3000; i++) {
    const value = randomJson(random);
    const bytes = encode(codec.encodeJson, value);
    assert.equal(bytes.toString(), JSON.stringify(value));
    assert.deepStrictEqual(codec.decodeJson(bytes, 0, bytes.length), JSON.parse(JSON.stringify(value)), `case ${i}`);
    for (let m = 0; m < 3; m++) {
      decodeOrRefuse(codec.decodeJson, mutate(random, bytes), `case ${i} mutation ${m}`);
    }
  }
});

test('D28: decoding a value within a larger buffer reads only its range; bad ranges are refused', () => {
  const bytes = encode(codec.encodeAdvanced, {a: [1, 2, 3]});
  const padded = Buffer.concat([Buffer.from([0xc1, 0xc1]), bytes, Buffer.from([0xc1])]);
  assert.deepEqual(codec.decodeAdvanced(padded, 2, 2 + bytes.length), {a: [1, 2, 3]});
  for (const [start, end] of [
    [-1, 3],
    [3, 2],
    [0, padded.length + 1],
    [0.5, 2],
  ]) {
    assert.throws(() => codec.decodeAdvanced(padded, start, end), {code: 'ERR_IPC_BAD_PAYLOAD'});
  }
});

test(`D28: 24 mutated frames through real raw peers: each is delivered or refused with a typed error, and the parent survives (seed ${SEED})`, async () => {
  const random = makeRandom(SEED + 3);
  const cases = Array.from({length: 24}, () => mutate(random, encode(codec.encodeAdvanced, randomValue(random, 3))));
  const run = async (payload, index) => {
    const subprocess = rawPeer(Buffer.concat([hello(), frame(KIND.message, payload), frame(KIND.message, Buffer.from([0xc3]))]), 'eof');
    const {ok, result, error} = await settle(subprocess);
    if (ok) {
      assert.equal(result.ipcOutput.length, 2, `case ${index}`);
      assert.equal(result.ipcOutput[1], true, `case ${index}`);
    } else {
      assert.equal(error.exitCode, 0, `case ${index}: ${error.message}`);
      assert.equal(error.cause?.code, 'ERR_IPC_BAD_PAYLOAD', `case ${index}: ${error.message}`);
      assert.deepEqual(error.ipcOutput, [], `case ${index}`);
    }
  };
  for (let start = 0; start < cases.length; start += 8) {
    await Promise.all(cases.slice(start, start + 8).map((payload, i) => run(payload, start + i)));
  }
});
