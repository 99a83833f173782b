'use strict';

/*
 * native-ipc value codec.
 *
 * Two serializations share one Writer:
 *   'json'     - UTF-8 JSON text, exactly JSON.stringify / JSON.parse.
 *   'advanced' - MessagePack with extension types, covering the structured
 *                clone set (structuredClone() is the reference behaviour).
 *
 * The full specification is PROTOCOL.md, section 5. Summary of the 'advanced'
 * mapping (all multi-byte integers are big-endian, as in MessagePack, except
 * the element bytes of typed arrays, which are little-endian):
 *
 *   undefined         fixext1 type 0 (UNDEFINED), payload 00           d4 00 00
 *   null, booleans    nil c0, false c2, true c3
 *   number            integer (and not -0) in [-2^31, 2^32): the smallest
 *                     int/uint format; anything else float 64 (cb)
 *   string            well-formed: str (fixstr/str8/16/32, UTF-8), except:
 *                     64 units or more (32 with two UTF-8 bytes or more
 *                     per unit), not pure ASCII, no character above
 *                     U+00FF, to a peer that takes it: ext 14 LATIN1
 *                     (below 4096 units, only with at least one UTF-8 byte
 *                     in 128 beyond one per character);
 *                     ill-formed (lone surrogates); 4096 units or more and
 *                     not pure ASCII; or 64 or more (32 or more, as above)
 *                     with at least one UTF-8 byte in 8 beyond one per
 *                     character: ext 3 STRING16
 *   bigint            ext 2 BIGINT
 *   plain object      map, str keys (own enumerable string keys, in order)
 *   dense array       array (named non-index properties are not carried)
 *   array with holes  ext 9 ARRAY (indices present + named properties)
 *   Buffer            bin (bin8/16/32)
 *   everything else   an ext type below
 *
 * Extension payloads. "[a, b, ...]" means the payload is exactly one
 * MessagePack array holding those values; that array is structural (it is
 * not a JS object and takes no back-reference index).
 *
 *   0  UNDEFINED    1 byte 00 (fixext1).
 *   1  REF          back-reference: index of an earlier object as an unsigned
 *                   big-endian integer of 1, 2 or 4 bytes (fixext1/2/4).
 *   2  BIGINT       1 sign byte (00 = zero or positive, 01 = negative), then
 *                   the magnitude big-endian with no leading 00 byte (zero
 *                   has an empty magnitude: payload is just 00).
 *   3  STRING16     the string's UTF-16 code units, little-endian (even
 *                   length).
 *   4  DATE         8 bytes: float64 big-endian time value in ms since the
 *                   epoch; NaN for an invalid date (fixext8).
 *   5  REGEXP       [source: string, flags: string].
 *   6  MAP          [k0, v0, k1, v1, ...] in insertion order.
 *   7  SET          [v0, v1, ...] in insertion order.
 *   8  ERROR        a structural map with string keys, in this order:
 *                   "name" (required; one of Error, EvalError, RangeError,
 *                   ReferenceError, SyntaxError, TypeError, URIError),
 *                   then optionally "message" (string), "stack" (string),
 *                   "cause" (any value).
 *   9  ARRAY        [length: uint, key0, value0, key1, value1, ...] where a
 *                   key is a uint (element index < length) or a string
 *                   (named own property, never "length" nor an index).
 *   10 BOXED        [v] with v a number, string, boolean or bigint.
 *   11 ARRAYBUFFER  the bytes.
 *   12 DATAVIEW     the viewed bytes.
 *   13 SHARED       a value whose bytes are in a memfd (PROTOCOL.md 4.6).
 *   14 LATIN1       a string, one byte per character (U+0000 to U+00FF).
 *   16..27          typed arrays: the viewed bytes, elements little-endian:
 *                   16 Int8Array, 17 Uint8Array, 18 Uint8ClampedArray,
 *                   19 Int16Array, 20 Uint16Array, 21 Int32Array,
 *                   22 Uint32Array, 23 Float32Array, 24 Float64Array,
 *                   25 BigInt64Array, 26 BigUint64Array, 27 Float16Array.
 *   -1 (decode only) MessagePack timestamp -> Date (millisecond precision).
 *
 * Back-references: every object (anything typeof 'object' and not null,
 * including Buffers and all object ext types above) takes the next index,
 * starting at 0, at the moment its encoding starts (pre-order), before any of
 * its children. A later occurrence of the same object is written as REF.
 *
 * Limits: objects nest at most MAX_DEPTH (10000) deep; the encoder throws the
 * ERR_IPC_UNSERIALIZABLE TypeError beyond it (or when the JS stack runs out
 * first, ~2000-5000 levels with Node's default stack, like structuredClone)
 * and the decoder throws ERR_IPC_BAD_PAYLOAD. No length may claim more bytes
 * than remain; this is checked before anything is allocated.
 *
 * Decoded binaries of >= 68 KiB (bin, typed arrays when aligned, DataView)
 * are views over the input buffer (zero copy); smaller ones are copied (see
 * ZERO_COPY_MIN).
 */

const { types } = require('util');
// Buffer is taken from the module: the global `Buffer` is an accessor property,
// which costs a getter call on every use.
const { Buffer, isUtf8, isAscii, constants: bufferConstants } = require('buffer');

const MAX_DEPTH = 10000;
// Also the size of the channel's landing buffer (lib/channel.js), which holds one 64 KiB read and the tail of a
// frame begun in the read before: a view into that buffer would change with the next batch.
const ZERO_COPY_MIN = 68 * 1024;
// The host's byte order, without loading node:os (~0.7 ms of a child's start-up).
const IS_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const MAX_BUFFER = bufferConstants.MAX_LENGTH;

const EXT = Object.freeze({
  UNDEFINED: 0,
  REF: 1,
  BIGINT: 2,
  STRING16: 3,
  DATE: 4,
  REGEXP: 5,
  MAP: 6,
  SET: 7,
  ERROR: 8,
  ARRAY: 9,
  BOXED: 10,
  ARRAYBUFFER: 11,
  DATAVIEW: 12,
  SHARED: 13,
  LATIN1: 14,
  INT8ARRAY: 16,
  UINT8ARRAY: 17,
  UINT8CLAMPEDARRAY: 18,
  INT16ARRAY: 19,
  UINT16ARRAY: 20,
  INT32ARRAY: 21,
  UINT32ARRAY: 22,
  FLOAT32ARRAY: 23,
  FLOAT64ARRAY: 24,
  BIGINT64ARRAY: 25,
  BIGUINT64ARRAY: 26,
  FLOAT16ARRAY: 27,
  TIMESTAMP: -1,
});

// ---------------------------------------------------------------------------
// Intrinsics captured at load time, so that later monkey-patching of globals
// cannot change what the codec does.

const {
  isProxy, isDate, isRegExp, isMap, isSet, isNativeError, isAnyArrayBuffer,
  isSharedArrayBuffer, isBoxedPrimitive, isNumberObject, isStringObject,
  isBooleanObject, isBigIntObject, isPromise, isWeakMap, isWeakSet,
  isGeneratorObject, isMapIterator, isSetIterator, isArgumentsObject,
  isModuleNamespaceObject, isExternal,
} = types;

const ObjectPrototype = Object.prototype;
const getPrototypeOf = Object.getPrototypeOf;
const defineProperty = Object.defineProperty;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const objectKeys = Object.keys;
const hasOwnProperty = Object.prototype.hasOwnProperty;
const objectIs = Object.is;
const objectToString = Object.prototype.toString;
const isArray = Array.isArray;
const isArrayBufferView = ArrayBuffer.isView;
const BufferPrototype = Buffer.prototype;
const fromCharCode = String.fromCharCode;
const jsonStringify = JSON.stringify;
const jsonParse = JSON.parse;
// shareCopy()'s clock, in milliseconds, taken at load: test runners' fake timers replace performance.now and
// process.hrtime on the global objects, which would freeze it. (Not performance.now: a process's first use of
// `performance` loads perf_hooks, ~0.5 ms of a child's start, and a vm context such as Jest's has none. Nor
// require('process'): the same object, through one more of Node's modules loaded at every child's start.)
const hrtimeBigint = process.hrtime.bigint;
const monotonicNow = () => Number(hrtimeBigint()) / 1e6;

function getter(proto, name) {
  const d = getOwnPropertyDescriptor(proto, name);
  return d === undefined ? undefined : d.get;
}
const TypedArrayPrototype = getPrototypeOf(Uint8Array.prototype);
const typedArrayTag = getter(TypedArrayPrototype, Symbol.toStringTag);
const dataViewBuffer = getter(DataView.prototype, 'buffer');
const dataViewByteOffset = getter(DataView.prototype, 'byteOffset');
const dataViewByteLength = getter(DataView.prototype, 'byteLength');
const arrayBufferByteLength = getter(ArrayBuffer.prototype, 'byteLength');
const arrayBufferDetached = getter(ArrayBuffer.prototype, 'detached');
const regExpSource = getter(RegExp.prototype, 'source');
const regExpFlags = getter(RegExp.prototype, 'flags');
const dateGetTime = Date.prototype.getTime;
const mapForEach = Map.prototype.forEach;
const setForEach = Set.prototype.forEach;
const mapSet = Map.prototype.set;
const setAdd = Set.prototype.add;
const numberValueOf = Number.prototype.valueOf;
const stringValueOf = String.prototype.valueOf;
const booleanValueOf = Boolean.prototype.valueOf;
const bigintValueOf = BigInt.prototype.valueOf;
const weakRefDeref = typeof WeakRef === 'function' ? WeakRef.prototype.deref : undefined;
const finRegUnregister = typeof FinalizationRegistry === 'function'
  ? FinalizationRegistry.prototype.unregister : undefined;
const UNREGISTER_TOKEN = {};

const TYPED_ARRAYS = [
  ['Int8Array', 16], ['Uint8Array', 17], ['Uint8ClampedArray', 18],
  ['Int16Array', 19], ['Uint16Array', 20], ['Int32Array', 21],
  ['Uint32Array', 22], ['Float32Array', 23], ['Float64Array', 24],
  ['BigInt64Array', 25], ['BigUint64Array', 26], ['Float16Array', 27],
];
const TYPED_EXT = { __proto__: null };          // constructor name -> ext type
const TYPED_CTOR = [];                          // ext type - 16 -> constructor
for (const [name, type] of TYPED_ARRAYS) {
  TYPED_EXT[name] = type;
  TYPED_CTOR[type - 16] = typeof globalThis[name] === 'function' ? globalThis[name] : undefined;
}

const ERROR_CTORS = {
  __proto__: null,
  Error, EvalError, RangeError, ReferenceError, SyntaxError, TypeError, URIError,
};

// Scratch space for float conversions.
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);

const EMPTY = Buffer.alloc(0);

// Writer buffers of this size or more are handed to `onLargeBuffer` before their first write.
const LARGE_BUFFER = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Writer

//
// External parts: with `externalMin` set, a binary payload (Buffer, typed
// array, ArrayBuffer, DataView) of at least that many bytes is not copied
// into `buf`. Its bytes logically sit at offset `extAt[i]` of the stream,
// before the byte `buf[extAt[i]]`; `parts()` lists the stream as buffers to
// hand to the kernel in order. The caller must consume the parts before the
// sender can change those bytes (the channel does it within the send call).
class Writer {
  constructor(initialSize = 64 * 1024) {
    if (!Number.isInteger(initialSize) || initialSize < 1 || initialSize > MAX_BUFFER) {
      throw new RangeError(`Writer initialSize must be an integer in [1, ${MAX_BUFFER}]`);
    }
    this.buf = Buffer.allocUnsafeSlow(initialSize);
    this.pos = 0;
    this.externalMin = Infinity;
    this.extAt = [];
    this.extBytes = [];
    this.extLength = 0;   // total bytes of the external parts
    // An external part that is bytes of a received frame (a long string sent on, see relayed()): nothing
    // changes them, so the channel may lend them to Rust when they end the stream.
    this.lendable = undefined;
    // Called with each new buffer of 4 MiB or more before anything is written to it (the channel asks the
    // kernel for huge pages there: see src/memory.rs).
    this.onLargeBuffer = undefined;
    // Shared-memory values (ext SHARED): `sharer.share(bytes)` gives a sealed memfd holding them, or nothing
    // where the peer does not take them. Descriptor `shareFds[i]` travels with the byte `buf[shareAt[i]]` and
    // holds `shareLengths[i]` bytes; `sharedLength` is their sum.
    this.sharer = undefined;
    // For shareCopy(): whether the channel's peer has not taken every shared value yet (the channel sets the
    // function), when a value of SHARE_MIN bytes or more was last written (monotonicNow()), and whether
    // such values are being streamed inline.
    this.peerHolds = () => false;
    // Whether the channel's peer takes ext LATIN1 (its handshake said so; the channel sets the function).
    this.peerLatin1 = () => false;
    this.lastLarge = -Infinity;
    this.streaming = false;
    this.shareAt = [];
    this.shareFds = [];
    this.shareLengths = [];
    this.sharedLength = 0;
  }

  /** Stream bytes of the external parts at or after buf offset `from`. */
  externalFrom(from) {
    let n = 0;
    for (let i = this.extAt.length - 1; i >= 0 && this.extAt[i] >= from; i--) n += this.extBytes[i].length;
    return n;
  }

  /** Moves the external parts at or after `from` by `delta` (bytes before them were inserted or removed). */
  shiftExternal(from, delta) {
    for (let i = this.extAt.length - 1; i >= 0 && this.extAt[i] >= from; i--) this.extAt[i] += delta;
    for (let i = this.shareAt.length - 1; i >= 0 && this.shareAt[i] >= from; i--) this.shareAt[i] += delta;
  }

  /** Whether positions of external parts or shared values need moving with the bytes. */
  get hasOutOfLine() {
    return this.extAt.length !== 0 || this.shareAt.length !== 0;
  }

  /**
   * Hands over the descriptors of the shared values: `[fds, at]`, `at[i]` the stream offset (external parts
   * counted) of the byte `fds[i]` travels with. The writer forgets them.
   */
  takeShared() {
    const fds = this.shareFds;
    const at = this.shareAt.map((pos) => {
      let offset = pos;
      for (let i = 0; i < this.extAt.length && this.extAt[i] <= pos; i++) offset += this.extBytes[i].length;
      return offset;
    });
    this.shareFds = [];
    this.shareAt = [];
    this.shareLengths = [];
    this.sharedLength = 0;
    return [fds, at];
  }

  /** Forgets everything from buf offset `pos` on, external parts included. */
  truncate(pos) {
    this.pos = pos;
    while (this.extAt.length > 0 && this.extAt[this.extAt.length - 1] >= pos) {
      this.extAt.pop();
      this.extLength -= this.extBytes.pop().length;
      this.lendable = undefined;
    }
    while (this.shareAt.length > 0 && this.shareAt[this.shareAt.length - 1] >= pos) {
      this.shareAt.pop();
      this.sharedLength -= this.shareLengths.pop();
      closeShared(this.shareFds.pop());
    }
  }

  /** The lendable part (see the constructor) when the stream ends with it, else undefined. */
  lendableTail() {
    const n = this.extAt.length;
    return this.lendable !== undefined && this.extAt[n - 1] === this.pos && this.extBytes[n - 1] === this.lendable
      ? this.lendable
      : undefined;
  }

  /** The stream as buffers in order (`buf` slices around the external parts). */
  parts() {
    const parts = [];
    let at = 0;
    for (let i = 0; i < this.extAt.length; i++) {
      if (this.extAt[i] > at) parts.push(this.buf.subarray(at, this.extAt[i]));
      parts.push(this.extBytes[i]);
      at = this.extAt[i];
    }
    if (this.pos > at) parts.push(this.buf.subarray(at, this.pos));
    return parts;
  }

  /** Empties the writer. */
  reset() {
    this.pos = 0;
    if (this.extLength !== 0 || this.extAt.length !== 0) {
      this.extAt = [];
      this.extBytes = [];
      this.extLength = 0;
      this.lendable = undefined;
    }
    if (this.shareFds.length !== 0) this.truncate(0);
  }

  // Makes room for n more bytes after pos, keeping bytes [0, pos).
  ensure(n) {
    const need = this.pos + n;
    const old = this.buf;
    if (need <= old.length) return;
    if (need > MAX_BUFFER) {
      throw new RangeError(`message too large: ${need} bytes exceeds the maximum Buffer size`);
    }
    let size = old.length * 2;
    if (size < 64) size = 64;
    while (size < need) size *= 2;
    if (size > MAX_BUFFER) size = MAX_BUFFER;
    let buf;
    // The spare only when it is not much larger than asked: a long-lived writer keeps its buffer (up to 32 MiB).
    if (size >= LARGE_BUFFER && spareLarge !== undefined && spareLarge.length >= need && spareLarge.length <= 2 * size) {
      buf = spareLarge;
      dropSpareLarge();
    } else {
      buf = Buffer.allocUnsafeSlow(size);
      if (size >= LARGE_BUFFER && this.onLargeBuffer !== undefined) this.onLargeBuffer(buf);
    }
    if (this.pos > 0) buf.set(new Uint8Array(old.buffer, old.byteOffset, this.pos), 0);
    this.buf = buf;
  }
}

// One large writer buffer that a closed channel no longer needs, for the next large message of any channel in
// this process (a process that forks a worker per job gets a new channel for each), dropped after
// SPARE_LARGE_MS unused. Memory a process has written before is backed already; a fresh 16 MiB buffer costs
// page faults, and on a VM whose host has not backed that memory yet, 20-50 ms of system time (the slowest
// 16 MiB string echoes here spent that in the parent's send()).
const SPARE_LARGE_MS = 1000;
var spareLarge;
var spareLargeTimer;

function dropSpareLarge() {
  spareLarge = undefined;
  if (spareLargeTimer !== undefined) {
    clearTimeout(spareLargeTimer);
    spareLargeTimer = undefined;
  }
}

/**
 * Offers `buf`, a writer buffer its owner no longer uses, to Writer#ensure. Returns whether it was kept (it is
 * LARGE_BUFFER bytes or more, and larger than the one kept so far): the owner must not write to it then.
 */
function offerLargeBuffer(buf) {
  if (buf.length < LARGE_BUFFER || (spareLarge !== undefined && spareLarge.length >= buf.length)) return false;
  dropSpareLarge();
  spareLarge = buf;
  spareLargeTimer = setTimeout(dropSpareLarge, SPARE_LARGE_MS);
  spareLargeTimer.unref();
  return true;
}

// ---------------------------------------------------------------------------
// Encoder state. encodeAdvanced() is re-entrant (a getter may call it); the
// state is saved and restored around a nested call.
//
// The hot module state here and below is declared with `var`: a module-level
// `let` read from another function costs V8 a check against the
// uninitialized ("hole") value on every read and write, even in optimized
// code, while `var` is read straight (callgrind: -12% of the instructions of
// a small decode, -6.5% of an encode).

var W = null;          // current Writer
var out = EMPTY;       // W.buf, cached
var opos = 0;          // write position, cached (W.pos is synced on exit / grow)
var encBusy = false;

// Objects seen so far, by index. Up to REF_LINEAR objects are searched
// linearly; past that a Map is built.
const REF_LINEAR = 16;
var refAll = [];
var refCount = 0;
var refMap = null;

function grow(n) {
  W.pos = opos;
  W.ensure(n);
  out = W.buf;
}

// Records bytes as an external part at the current position (see Writer).
function addExternal(bytes) {
  W.extAt.push(opos);
  W.extBytes.push(bytes);
  W.extLength += bytes.length;
}

function refFind(v) {
  if (refMap === null) {
    for (let i = 0; i < refCount; i++) if (refAll[i] === v) return i;
    return -1;
  }
  const i = refMap.get(v);
  return i === undefined ? -1 : i;
}

function refAdd(v) {
  refAll[refCount] = v;
  if (refMap !== null) {
    refMap.set(v, refCount);
  } else if (refCount === REF_LINEAR) {
    refMap = new Map();
    for (let i = 0; i <= refCount; i++) refMap.set(refAll[i], i);
  }
  refCount++;
}

// Forgets the objects registered at index >= mark.
function refTruncate(mark) {
  for (let i = mark; i < refCount; i++) {
    if (refMap !== null) refMap.delete(refAll[i]);
    refAll[i] = null;
  }
  refCount = mark;
}

function refClear() {
  if (refCount > 4096) {
    refAll = [];
  } else {
    for (let i = 0; i < refCount; i++) refAll[i] = null;
  }
  refCount = 0;
  refMap = null;
}

// ---------------------------------------------------------------------------
// Encoder errors. A PathError travels up the recursion, each container adding
// its path segment; encodeAdvanced() turns it into the public TypeError.

class PathError {
  constructor(what) {
    this.what = what;
    this.segs = [];   // innermost first
  }
}

const SEG_KEY = 0;      // plain object / array named property
const SEG_INDEX = 1;    // array index
const SEG_MAPKEY = 2;   // n-th Map key
const SEG_MAPVAL = 3;   // Map value, segment is its key
const SEG_SETVAL = 4;   // n-th Set value
const SEG_CAUSE = 5;    // Error cause

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function describeKey(k) {
  switch (typeof k) {
    case 'string': return jsonStringify(k);
    case 'number': return Object.is(k, -0) ? '-0' : String(k);
    case 'bigint': return `${k}n`;
    case 'boolean': case 'undefined': return String(k);
    case 'symbol': return 'Symbol()';
    default: return k === null ? 'null' : '{\u2026}';
  }
}

function formatSeg(kind, s) {
  switch (kind) {
    case SEG_KEY: return IDENT.test(s) ? `.${s}` : `[${jsonStringify(s)}]`;
    case SEG_INDEX: return `[${s}]`;
    case SEG_MAPKEY: return `.keys()[${s}]`;
    case SEG_MAPVAL: return `.get(${describeKey(s)})`;
    case SEG_SETVAL: return `.values()[${s}]`;
    default: return '.cause';
  }
}

function isStackOverflow(e) {
  return e instanceof RangeError && e.message === 'Maximum call stack size exceeded';
}

// Called from a container's catch block: records where the failure happened.
function addSeg(e, kind, s) {
  if (e instanceof PathError) {
    e.segs.push(kind, s);
    return e;
  }
  if (isStackOverflow(e)) {
    const p = new PathError('is nested too deeply (the JavaScript stack was exhausted)');
    p.segs.push(kind, s);
    return p;
  }
  return e;
}

function unserializable(message) {
  const e = new TypeError(message);
  e.code = 'ERR_IPC_UNSERIALIZABLE';
  return e;
}

function publicEncodeError(e) {
  if (e instanceof PathError) {
    const segs = e.segs;
    const n = segs.length >> 1;
    let path = '';
    const HEAD = 24;
    const TAIL = 8;
    for (let j = 0; j < n; j++) {
      if (n > HEAD + TAIL + 1 && j === HEAD) {
        path += `\u2026(${n - HEAD - TAIL} levels)\u2026`;
        j = n - TAIL - 1;
        continue;
      }
      const i = (n - 1 - j) * 2;   // segs are innermost first
      path += formatSeg(segs[i], segs[i + 1]);
    }
    return unserializable(`message${path} ${e.what}`);
  }
  if (isStackOverflow(e)) {
    return unserializable('message is nested too deeply (the JavaScript stack was exhausted)');
  }
  return e;
}

// ---------------------------------------------------------------------------
// Encoder: primitives

// DataView over the current output buffer (setFloat64 is much cheaper than
// byte shuffling through a scratch array); rebuilt when the buffer changes,
// and dropped after an encode into a buffer over VIEW_KEEP_MAX bytes, which
// it would otherwise keep alive after the Writer let go of it.
var outView = null;
var outViewBuf = null;
const VIEW_KEEP_MAX = 1024 * 1024;

function outDataView(b) {
  if (outViewBuf !== b) {
    outView = new DataView(b.buffer, b.byteOffset, b.length);
    outViewBuf = b;
  }
  return outView;
}

function writeF64(b, p, v) {
  if (outViewBuf === b) outView.setFloat64(p, v);
  else writeF64Slow(b, p, v);
}

function writeF64Slow(b, p, v) {
  if (b.length >= 1024) {            // worth a DataView (Writers are long-lived)
    outDataView(b).setFloat64(p, v);
    return;
  }
  f64[0] = v;
  if (IS_LE) {
    b[p] = f64b[7]; b[p + 1] = f64b[6]; b[p + 2] = f64b[5]; b[p + 3] = f64b[4];
    b[p + 4] = f64b[3]; b[p + 5] = f64b[2]; b[p + 6] = f64b[1]; b[p + 7] = f64b[0];
  } else {
    for (let i = 0; i < 8; i++) b[p + i] = f64b[i];
  }
}

// Kept small so that TurboFan inlines it into the container loops (which
// avoids boxing doubles); the rarer integer forms live in encIntSlow.
function encNumber(n) {
  if (opos + 9 > out.length) grow(9);
  const b = out;
  const p = opos;
  // -0 told apart by Object.is on every small integer, not by `1 / n` on zeros alone: V8 optimized the encoder
  // without feedback for a division that only a 0 reaches, and threw it away at the first 0 after that (a
  // counter's first message in a parent's second burst of sends).
  if ((n >>> 0) === n && n < 0x80 && !objectIs(n, -0)) {
    b[p] = n;
    opos = p + 1;
  } else if ((n | 0) === n || (n >>> 0) === n) {
    if (n === 0) {                           // -0
      b[p] = 0xcb;
      writeF64(b, p + 1, n);
      opos = p + 9;
    } else {
      encIntSlow(b, p, n);
    }
  } else {
    b[p] = 0xcb;
    writeF64(b, p + 1, n);
    opos = p + 9;
  }
}

// n is an integer in [-2^31, 2^32), not in [0, 128).
function encIntSlow(b, p, n) {
  if (n >= 0) {
    // uint8/16/32 by the same big-endian 32-bit store, the value left-aligned (encNumber made room for 9 bytes;
    // what follows overwrites the bytes past the value). A counter that outgrows a size then stays on the code
    // V8 optimized, where a branch per size would deoptimize the encoder the first time a new one is taken. One
    // DataView store rather than four byte stores: 5.8% fewer instructions in a fresh process's first 200k small
    // messages (callgrind), as many warm.
    const size = n < 0x100 ? 1 : n < 0x10000 ? 2 : 4;
    b[p] = size === 4 ? 0xce : 0xcb + size;
    (outViewBuf === b ? outView : outDataView(b)).setUint32(p + 1, n << (32 - 8 * size));
    opos = p + 1 + size;
  } else if (n >= -32) {
    b[p] = n & 0xff; opos = p + 1;
  } else if (n >= -128) {
    b[p] = 0xd0; b[p + 1] = n & 0xff; opos = p + 2;
  } else if (n >= -32768) {
    b[p] = 0xd1; b[p + 1] = (n >> 8) & 0xff; b[p + 2] = n & 0xff; opos = p + 3;
  } else {
    b[p] = 0xd2; b[p + 1] = (n >>> 24) & 0xff; b[p + 2] = (n >>> 16) & 0xff;
    b[p + 3] = (n >>> 8) & 0xff; b[p + 4] = n & 0xff; opos = p + 5;
  }
}

// Writes an ext header for a payload of known length (at most 6 bytes).
function extHeader(type, len) {
  if (opos + 6 > out.length) grow(6);
  const b = out;
  const p = opos;
  switch (len) {
    case 1: b[p] = 0xd4; b[p + 1] = type; opos = p + 2; return;
    case 2: b[p] = 0xd5; b[p + 1] = type; opos = p + 2; return;
    case 4: b[p] = 0xd6; b[p + 1] = type; opos = p + 2; return;
    case 8: b[p] = 0xd7; b[p + 1] = type; opos = p + 2; return;
    case 16: b[p] = 0xd8; b[p + 1] = type; opos = p + 2; return;
  }
  if (len < 0x100) {
    b[p] = 0xc7; b[p + 1] = len; b[p + 2] = type; opos = p + 3;
  } else if (len < 0x10000) {
    b[p] = 0xc8; b[p + 1] = len >>> 8; b[p + 2] = len & 0xff; b[p + 3] = type; opos = p + 4;
  } else {
    b[p] = 0xc9; b[p + 1] = len >>> 24; b[p + 2] = (len >>> 16) & 0xff;
    b[p + 3] = (len >>> 8) & 0xff; b[p + 4] = len & 0xff; b[p + 5] = type; opos = p + 6;
  }
}

// Ext whose payload length is only known afterwards: reserve the largest
// header, write the payload, then shrink the header to the minimal form.
function extBegin() {
  if (opos + 6 > out.length) grow(6);
  const h = opos;
  opos = h + 6;
  return h;
}

function extEnd(h, type) {
  const inBuf = opos - h - 6;
  const len = inBuf + (W.extAt.length === 0 ? 0 : W.externalFrom(h + 6));
  let hs;
  if (len === 1 || len === 2 || len === 4 || len === 8 || len === 16) hs = 2;
  else if (len < 0x100) hs = 3;
  else if (len < 0x10000) hs = 4;
  else hs = 6;
  if (hs !== 6) {
    out.copyWithin(h + hs, h + 6, opos);
    if (W.hasOutOfLine) W.shiftExternal(h + 6, hs - 6);
  }
  opos = h;
  extHeader(type, len);
  opos = h + hs + inBuf;
}

function containerHeader(n, fix, c16, c32) {
  if (opos + 5 > out.length) grow(5);
  const b = out;
  const p = opos;
  if (n < 16) {
    b[p] = fix | n; opos = p + 1;
  } else if (n < 0x10000) {
    b[p] = c16; b[p + 1] = n >>> 8; b[p + 2] = n & 0xff; opos = p + 3;
  } else {
    b[p] = c32; b[p + 1] = n >>> 24; b[p + 2] = (n >>> 16) & 0xff;
    b[p + 3] = (n >>> 8) & 0xff; b[p + 4] = n & 0xff; opos = p + 5;
  }
}

function arrayHeader(n) { containerHeader(n, 0x90, 0xdc, 0xdd); }
function mapHeader(n) { containerHeader(n, 0x80, 0xde, 0xdf); }

// Strings shorter than this are UTF-8 encoded by a JS loop; longer ones by
// Buffer#utf8Write (whose fixed call cost is about that of 30 loop turns).
const SHORT_STR = 32;

function encString(s) {
  const len = s.length;
  if (len >= SHORT_STR) {
    encLongString(s);
    return;
  }
  // Worst case 3 bytes per UTF-16 unit, plus a str8 header.
  if (opos + 2 + len * 3 > out.length) grow(2 + len * 3);
  const b = out;
  const h = opos;
  let p = len < 32 ? h + 1 : h + 2;   // guess fixstr for < 32 units
  const start = p;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      b[p++] = c;
    } else if (c < 0x800) {
      b[p++] = 0xc0 | (c >> 6);
      b[p++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      b[p++] = 0xe0 | (c >> 12);
      b[p++] = 0x80 | ((c >> 6) & 0x3f);
      b[p++] = 0x80 | (c & 0x3f);
    } else {
      const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) {
        encString16(s);                 // lone surrogate
        return;
      }
      i++;
      c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      b[p++] = 0xf0 | (c >> 18);
      b[p++] = 0x80 | ((c >> 12) & 0x3f);
      b[p++] = 0x80 | ((c >> 6) & 0x3f);
      b[p++] = 0x80 | (c & 0x3f);
    }
  }
  const n = p - start;
  if (len < 32) {
    if (n < 32) {
      b[h] = 0xa0 | n;
    } else {                             // guessed wrong: needs str8
      b.copyWithin(h + 2, h + 1, p);
      b[h] = 0xd9; b[h + 1] = n;
      p++;
    }
  } else {
    b[h] = 0xd9; b[h + 1] = n;           // 32 <= n <= 189
  }
  opos = p;
}

// A character above U+00FF: a long string without one goes one byte per character (Latin-1), inline or shared.
const BEYOND_ONE_BYTE = /[^\u0000-\u00ff]/;

// A long string (4096 characters or more, not shared) without a character above U+00FF goes one byte per
// character: as a str when it is ASCII, else as LATIN1 where the peer takes that; anything else as STRING16.
// V8 answers the test for such a character at once for a string it holds one byte per character (as it holds
// ASCII and Latin-1 text), latin1Write copies it, and isAscii reads the copy at memory speed: over 1 MiB of
// Latin-1 text here, utf8Write (which the encoder tried first before) took ~480 us only to find it was not
// ASCII, latin1Write 19 and isAscii 9; over ASCII, utf8Write 46 against 27 for both.
function encLongOneByte(s, len) {
  if (BEYOND_ONE_BYTE.test(s)) {
    encString16(s);
    return;
  }
  const hs = strHeaderSize(len);
  if (opos + hs + 1 + len > out.length) grow(hs + 1 + len);
  const b = out;
  const h = opos;
  b.latin1Write(s, h + hs, len);
  if (isAscii(new Uint8Array(b.buffer, b.byteOffset + h + hs, len))) {
    longStrHeader(b, h, len, hs);
    opos = h + hs + len;
  } else if (W.peerLatin1()) {
    // An ext header is one byte longer than a str header for the same length (ext16 and ext32). Moving the copy
    // costs less than writing the string again (1 MiB: 32 against 43 us for the whole encoding).
    b.copyWithin(h + hs + 1, h + hs, h + hs + len);
    extHeader(EXT.LATIN1, len);
    opos += len;
  } else {
    encString16(s);
  }
}

// Writes at b[h] the header of a str16 (hs 3) or str32 (hs 5) of n bytes.
function longStrHeader(b, h, n, hs) {
  if (hs === 3) {
    b[h] = 0xda; b[h + 1] = n >>> 8; b[h + 2] = n & 0xff;
  } else {
    b[h] = 0xdb; b[h + 1] = n >>> 24; b[h + 2] = (n >>> 16) & 0xff;
    b[h + 3] = (n >>> 8) & 0xff; b[h + 4] = n & 0xff;
  }
}

// Long strings decoded in this turn of the event loop as external strings over received bytes, at most
// RELAY_SLOTS: [string, its bytes, their form] each. The forms: RELAY_ONE_BYTE, ASCII in a frame (see
// decodeLongString); RELAY_LATIN1, one byte per character, ASCII or not (a LATIN1 value, or the one-byte form
// of a shared value); RELAY_QUOTED, a JSON string's text with its quotes; RELAY_UTF16, the UTF-16 code units of
// a shared value (STRING16). An echo or a relay that sends one on writes those bytes (an external part the
// channel lends to Rust, or the same file for a shared value) instead of encoding the string again, and the
// sending side keeps no copy of what the kernel did not take yet. Forgotten at setImmediate, so that they never
// keep a frame or a mapping alive for long.
const RELAY_SLOTS = 4;
const RELAY_ONE_BYTE = 0;
const RELAY_QUOTED = 1;
const RELAY_UTF16 = 2;
const RELAY_LATIN1 = 3;
const relaySlots = [];
var relayCount = 0;
var relayForgetting = false;

function forgetRelayed() {
  relayForgetting = false;
  relaySlots.length = 0;
  relayCount = 0;
}

// RELAY_QUOTED: [start, end) lies between the quotes of its JSON text, which the slot then holds, quotes included.
function rememberRelayed(s, b, start, end, form) {
  if (relayCount === RELAY_SLOTS) {
    relaySlots.splice(0, 3);
    relayCount--;
  }
  if (form === RELAY_QUOTED) {
    start--;
    end++;
  }
  relaySlots.push(s, Buffer.from(b.buffer, b.byteOffset + start, end - start), form);
  relayCount++;
  if (!relayForgetting) {
    relayForgetting = true;
    setImmediate(forgetRelayed);
  }
}

// Writes `s` from the bytes it was received as, when it is one of the strings above (a str16/str32 header, or
// LATIN1's where they are not ASCII and the peer takes it, then those bytes as a lendable external part). Equal
// strings have equal bytes, so a copy of one qualifies too.
function relayed(s, len) {
  let bytes = relayBytes(s, len, RELAY_ONE_BYTE);
  let ascii = true;
  if (bytes === undefined) {
    bytes = relayBytes(s, len, RELAY_LATIN1);
    if (bytes === undefined) return false;
    ascii = isAscii(bytes);
    if (!ascii && !W.peerLatin1()) return false;
  }
  if (ascii) {
    const hs = strHeaderSize(len);
    if (opos + hs > out.length) grow(hs);
    longStrHeader(out, opos, len, hs);
    opos += hs;
  } else {
    extHeader(EXT.LATIN1, len);
  }
  addExternal(bytes);
  W.lendable = bytes;
  return true;
}

// The bytes of the given form a relay slot holds for the string s of len characters; undefined when no slot
// holds them.
function relayBytes(s, len, form) {
  const n = form === RELAY_QUOTED ? len + 2 : form === RELAY_UTF16 ? 2 * len : len;
  for (let i = 0; i < relayCount; i++) {
    const bytes = relaySlots[3 * i + 1];
    if (relaySlots[3 * i + 2] === form && bytes.length === n && relaySlots[3 * i] === s) return bytes;
  }
  return undefined;
}

function strHeaderSize(n) {
  return n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

// A non-ASCII string from this many code units on may be written as LATIN1 or STRING16 rather than as UTF-8,
// which V8 decodes at 0.1-0.3 GB/s where it is not ASCII (see encMidNonAscii); from SHORT_STR on, one whose UTF-8
// takes two bytes or more per code unit (CJK text) too.
const MID_ONE_BYTE = 64;

function encLongString(s) {
  const len = s.length;
  if (sharing(len) && IS_LE && shareString(s, len)) return;
  if (relayCount !== 0 && len >= ZERO_COPY_MIN && W.externalMin !== Infinity && relayed(s, len)) return;
  // V8 decodes non-ASCII UTF-8 at 0.1-0.3 GB/s, but copies one-byte and UTF-16 text at memory speed: long text
  // goes one byte per character where it can, else as its UTF-16 code units (STRING16), which is also what
  // carries lone surrogates (see encLongOneByte); shorter text that is not ASCII, likewise where that pays
  // (encMidNonAscii).
  if (len >= 4096) {
    encLongOneByte(s, len);
    return;
  }
  // Text that starts with a character of three UTF-8 bytes (CJK) is looked at from its start: once it is seen to
  // be STRING16 (encMidNonAscii), it is written so without the UTF-8 that would only tell as much.
  if (s.charCodeAt(0) >= 0x800 && denseFromStart(s, len)) {
    encString16(s);
    return;
  }
  if (!s.isWellFormed()) {
    encString16(s);
    return;
  }
  // Reserve the worst case (3 bytes per unit): utf8Write then writes it whole, and says whether it is ASCII.
  const cap = len * 3;
  const hs = strHeaderSize(cap);
  if (opos + hs + cap > out.length) grow(hs + cap);
  const h = opos;
  const n = out.utf8Write(s, h + hs, cap);
  if (n !== len && (len >= MID_ONE_BYTE || n >= 2 * len) && encMidNonAscii(s, len, n)) return;
  const b = out;
  const hn = strHeaderSize(n);
  if (hn !== hs) b.copyWithin(h + hn, h + hs, h + hs + n);
  if (hn === 1) {
    b[h] = 0xa0 | n;
  } else if (hn === 2) {
    b[h] = 0xd9; b[h + 1] = n;
  } else {
    longStrHeader(b, h, n, hn);
  }
  opos = h + hn + n;
}

// Whether the UTF-8 of s (SHORT_STR to 4095 code units, its first character above U+00FF) has so many bytes beyond
// one per code unit that encMidNonAscii writes it as STRING16: one in eight from MID_ONE_BYTE code units, one per
// code unit below. Counted from the start, and true as soon as the part counted has them: CJK text is known
// after a sixteenth of its length. (A lone surrogate counts as one: such a string goes as STRING16 anyway.)
function denseFromStart(s, len) {
  const need = len >= MID_ONE_BYTE ? (len + 7) >>> 3 : len;
  let extra = 0;
  for (let i = 0; i < len; i++) {
    const c = s.charCodeAt(i);
    extra += c < 0x80 ? 0 : c < 0x800 || (c >= 0xd800 && c <= 0xdfff) ? 1 : 2;
    if (extra >= need) return true;
  }
  return false;
}

// A well-formed, non-ASCII string of MID_ONE_BYTE to 4095 code units (or from SHORT_STR, with two UTF-8 bytes or
// more per code unit), already written at opos (which has not moved) as n bytes of UTF-8, of which n - len beyond
// one per character. Written again as LATIN1 when none of its characters is above U+00FF and the peer takes that,
// else as STRING16 when at least one byte in eight is beyond one per character; false (the UTF-8 stays) otherwise.
// The test for a character above U+00FF is answered at once for a string V8 holds one byte per character, but scans
// a two-byte string up to its first such character: it is left out for a string with fewer than one such byte in
// 128, which V8 decodes from UTF-8 about as fast (mostly ASCII, as English text with an emoji or a typographic
// quote), and for one whose last character is such a one (an emoji at the end), which it would scan whole.
function encMidNonAscii(s, len, n) {
  const extra = n - len;
  if (extra * 128 >= len && s.charCodeAt(len - 1) <= 0xff && W.peerLatin1() && !BEYOND_ONE_BYTE.test(s)) {
    extHeader(EXT.LATIN1, len);
    out.latin1Write(s, opos, len);
    opos += len;
    return true;
  }
  if (extra * 8 < len) return false;
  encString16(s);
  return true;
}

// Values of SHARE_MIN bytes or more go through shared memory where the channel's peer takes it (the ext
// SHARED: PROTOCOL.md 4.6): the bytes are copied once, into a sealed memfd, and the frame carries 17 bytes.
// Below SHARE_ALWAYS bytes, a value is copied into a new memfd only where that pays. Sent while the peer has
// not taken an earlier shared value yet, it goes inline, and so do the next ones until none was sent for
// STREAM_GAP_MS: a stream of such values, since filling fresh shared memory for each costs more than the copies
// it saves while the inline path's buffers are warm (a memfd gets no huge pages where shmem_enabled is never,
// the common default; README, How it works). A value sent after the peer took the ones before (a request and
// its answer, an echo) is shared. Bytes that arrived shared and are sent on unchanged go back as the same file
// whenever they can, which copies nothing.
const SHARE_MIN = 8 * 1024 * 1024;
const SHARE_ALWAYS = 32 * 1024 * 1024;
const STREAM_GAP_MS = 1000;

// Whether a value of n bytes (SHARE_MIN or more) may be copied into a new memfd (see SHARE_ALWAYS).
function shareCopy(n) {
  const now = monotonicNow();
  const recent = now - W.lastLarge < STREAM_GAP_MS;
  W.lastLarge = now;
  if (n >= SHARE_ALWAYS) return true;
  if (W.peerHolds()) W.streaming = true;
  else if (!recent) W.streaming = false;
  return !W.streaming;
}
var closeShared = undefined;

// Whether a value of n bytes is to be tried as a shared value: large enough, on a channel (not in a frame that
// must stay whole, such as one carrying a handle).
function sharing(n) {
  return n >= SHARE_MIN && W.sharer !== undefined && W.externalMin !== Infinity;
}

// Writes `bytes` as a shared value whose inline form is `what` (0xc4 bin, 0xa0 one-byte string, STRING16,
// ARRAYBUFFER, DATAVIEW or a typed array type); false, writing nothing, where the channel cannot share them,
// or where that would take a copy and `copy` (shareCopy() by default) is false.
function shareBytes(what, bytes, copy = shareCopy(bytes.length)) {
  const shared = W.sharer.share(bytes, copy);
  if (shared.length === 0) return false;
  const n = bytes.length;
  W.shareAt.push(opos);
  W.shareFds.push(shared[0]);
  W.shareLengths.push(n);
  W.sharedLength += n;
  extHeader(EXT.SHARED, 17);
  if (opos + 17 > out.length) grow(17);
  const b = out;
  const p = opos;
  b[p] = what;
  writeU64(b, p + 1, shared[1]);
  writeU64(b, p + 9, n);
  opos = p + 17;
  return true;
}

function writeU64(b, p, v) {
  const hi = Math.floor(v / 0x100000000);
  const lo = v >>> 0;
  b[p] = 0; b[p + 1] = (hi >>> 16) & 0xff; b[p + 2] = (hi >>> 8) & 0xff; b[p + 3] = hi & 0xff;
  b[p + 4] = lo >>> 24; b[p + 5] = (lo >>> 16) & 0xff; b[p + 6] = (lo >>> 8) & 0xff; b[p + 7] = lo & 0xff;
}

// A long string as a shared value: from the bytes it arrived in when it is being sent on (the same file,
// when it came shared), else encoded into the output first (one byte per character when every character is
// at most U+00FF, else UTF-16), shared from there, and the output taken back. V8 answers the test at once for
// a string it holds one byte per character, as it holds ASCII and Latin-1 text; on a two-byte string it scans
// up to the first character above U+00FF (16M characters in ~4.5 ms here, when that one comes last). A
// Latin-1 string of 16M characters is written in ~1 ms this way, against 12-16 ms into UTF-16, and its file
// is half the size.
function shareString(s, len) {
  if (relayCount !== 0) {
    const relay = relayBytes(s, len, RELAY_ONE_BYTE) ?? relayBytes(s, len, RELAY_LATIN1);
    if (relay !== undefined) return shareBytes(0xa0, relay);
    const relay16 = relayBytes(s, len, RELAY_UTF16);
    if (relay16 !== undefined) return shareBytes(EXT.STRING16, relay16);
  }
  if (!shareCopy(len)) return false;
  const h = opos;
  let what;
  let n;
  if (BEYOND_ONE_BYTE.test(s)) {
    what = EXT.STRING16;
    if (h + 2 * len > out.length) grow(2 * len);
    n = out.ucs2Write(s, h, 2 * len);
  } else {
    what = 0xa0;
    if (h + len > out.length) grow(len);
    n = out.latin1Write(s, h, len);
  }
  const bytes = out.subarray(h, h + n);
  return shareBytes(what, bytes, true);
}

function encString16(s) {
  const n = s.length * 2;
  extHeader(EXT.STRING16, n);
  if (opos + n > out.length) grow(n);
  out.ucs2Write(s, opos, n);          // always little-endian
  opos += n;
}

function encBigInt(v) {
  const neg = v < 0n;
  const mag = neg ? -v : v;
  if (mag === 0n) {
    extHeader(EXT.BIGINT, 1);
    if (opos + 1 > out.length) grow(1);
    out[opos++] = 0;
    return;
  }
  let hex = mag.toString(16);
  if (hex.length & 1) hex = '0' + hex;
  const nb = hex.length >> 1;
  extHeader(EXT.BIGINT, nb + 1);
  if (opos + nb + 1 > out.length) grow(nb + 1);
  out[opos] = neg ? 1 : 0;
  out.hexWrite(hex, opos + 1, nb);
  opos += nb + 1;
}

// ---------------------------------------------------------------------------
// Encoder: values

// depth: the nesting depth v has if it is an object (the top value is 1).
function encValue(v, depth) {
  if (typeof v === 'string') {
    encString(v);
  } else if (typeof v === 'number') {
    encNumber(v);
  } else if (typeof v === 'object') {
    if (v === null) {
      if (opos + 1 > out.length) grow(1);
      out[opos++] = 0xc0;
    } else {
      encObject(v, depth);
    }
  } else if (typeof v === 'boolean') {
    if (opos + 1 > out.length) grow(1);
    out[opos++] = v ? 0xc3 : 0xc2;
  } else if (typeof v === 'undefined') {
    if (opos + 3 > out.length) grow(3);
    out[opos] = 0xd4; out[opos + 1] = EXT.UNDEFINED; out[opos + 2] = 0;
    opos += 3;
  } else if (typeof v === 'bigint') {
    encBigInt(v);
  } else if (typeof v === 'function') {
    throw new PathError('is a function');
  } else if (typeof v === 'symbol') {
    throw new PathError('is a symbol');
  } else {
    throw new PathError(`is of unsupported type ${typeof v}`);
  }
}

function encRef(i) {
  if (opos + 6 > out.length) grow(6);
  const b = out;
  const p = opos;
  if (i < 0x100) {
    b[p] = 0xd4; b[p + 1] = EXT.REF; b[p + 2] = i; opos = p + 3;
  } else if (i < 0x10000) {
    b[p] = 0xd5; b[p + 1] = EXT.REF; b[p + 2] = i >>> 8; b[p + 3] = i & 0xff; opos = p + 4;
  } else {
    b[p] = 0xd6; b[p + 1] = EXT.REF; b[p + 2] = i >>> 24; b[p + 3] = (i >>> 16) & 0xff;
    b[p + 4] = (i >>> 8) & 0xff; b[p + 5] = i & 0xff; opos = p + 6;
  }
}

function encObject(v, depth) {
  const seen = refFind(v);
  if (seen !== -1) {
    encRef(seen);
    return;
  }
  if (depth > MAX_DEPTH) throw new PathError(`is nested more than ${MAX_DEPTH} levels deep`);
  if (isProxy(v)) throw new PathError('is a Proxy');
  refAdd(v);
  if (isArray(v)) {
    encArray(v, depth);
    return;
  }
  const proto = getPrototypeOf(v);
  if (proto === ObjectPrototype || proto === null) {
    encPlain(v, depth);
  } else if (proto === BufferPrototype && isArrayBufferView(v)) {
    encBin(v);
  } else {
    encOther(v, depth);
  }
}

// Encoded strings by position in their object. Messages mostly come in a few shapes, so the key at position j
// is usually the very string seen there last time, and so, often, is the value (a type tag, a status, a
// name): one comparison, then a copy of its bytes, instead of re-encoding it character by character (~35
// instructions each in V8's charCodeAt). Slots 0..KEY_SLOTS-1 hold keys, the next KEY_SLOTS the string
// values of the same positions.
const KEY_SLOTS = 16;
// Keys that missed at their position (nested objects of other shapes take the same positions; a record's
// nested objects made half its keys miss) are looked up a second time in one of HASH_SLOTS slots picked by
// their length and first and last characters, after the position and value slots.
const HASH_SLOTS = 64;
const HASH_BASE = 2 * KEY_SLOTS;
const STR_SLOTS = HASH_BASE + HASH_SLOTS;
const KEY_WORDS = 6;                     // up to 24 bytes: the header and 23 characters
const MAX_CACHED_CHARS = KEY_WORDS * 4 - 1;
// After the advanced encoder's slots, the json encoder's: JSON_KEY_SLOT + j holds the key of position j,
// JSON_VALUE_SLOT + j its string value (see jKey).
const JSON_KEY_SLOT = STR_SLOTS;
const JSON_VALUE_SLOT = STR_SLOTS + KEY_SLOTS;
const CACHE_SLOTS = STR_SLOTS + 2 * KEY_SLOTS;
const encCache = new Array(STR_SLOTS);
const encCacheLen = new Uint8Array(CACHE_SLOTS);
// The encoded bytes, read back as 32-bit words in this machine's byte order and written back in it: a hit is
// a few DataView stores, much cheaper in V8 than a byte loop over two typed arrays (which rechecks both arrays
// on every byte).
const encCacheWords = new Uint32Array(CACHE_SLOTS * KEY_WORDS);
const encCacheBytes = new Uint8Array(encCacheWords.buffer);

// An empty slot holds the empty string with its encoding (fixstr 0xa0), never null: TurboFan specializes
// `encCache[slot] === s` for strings, and a null met after forgetValueStrings() threw a fresh process's
// optimized encoder away. A hit on '' writes 0xa0, which is right.
function emptySlot(slot) {
  encCache[slot] = '';
  encCacheLen[slot] = 1;
  encCacheBytes[slot * KEY_WORDS * 4] = 0xa0;
}
// Filled without calling emptySlot(): 96 calls from top-level code cost a child's start ~90 us, the loop below ~10.
encCache.fill('');
encCacheLen.fill(1, 0, STR_SLOTS);
for (let slot = 0; slot < STR_SLOTS; slot++) encCacheBytes[slot * KEY_WORDS * 4] = 0xa0;
// A value string is kept only once it came twice in a row at its position, so a value that does not repeat
// costs a failed comparison and a store, not a copy into the cache; after VALUE_TRIES values in a row that
// were not hits, the position is left alone (no comparison at all) until the values are forgotten. Keys are kept
// at once: a property name is interned by V8 and nearly always repeats. Values and candidates are forgotten
// once the code that encoded them has run to its end (a microtask, queued when one is first kept), as a short
// string can be a slice that keeps a large one alive. Not at every flush: a burst of sends then kept its hits,
// where forgetting every 64 KiB sent a fresh process's encoder down a path V8 had not seen and threw its
// optimized code away.
const VALUE_TRIES = 8;
const valueSeen = new Array(KEY_SLOTS).fill('');
const valueMisses = new Uint8Array(KEY_SLOTS);
const microtask = Promise.resolve();
var forgetQueued = false;
const forgetQueuedValues = () => {
  forgetQueued = false;
  forgetValueStrings();
};

/** Called when a value string is kept: it is forgotten once the current run of code ends. */
function keepUntilTurnEnds() {
  if (!forgetQueued) {
    forgetQueued = true;
    microtask.then(forgetQueuedValues);
  }
}

function copyCached(slot) {
  const n = encCacheLen[slot];
  // Whole words are written; the bytes past n are overwritten by what follows.
  if (opos + n + 3 > out.length) grow(n + 3);
  // The current view read directly, and the first word written outside the loop (a cached string has at least
  // its header byte): callgrind, 200k small messages, 5% fewer instructions warm, 3% fewer in a fresh process.
  const view = outViewBuf === out ? outView : outDataView(out);
  const p = opos;
  const base = slot * KEY_WORDS;
  view.setUint32(p, encCacheWords[base], IS_LE);
  for (let w = 1; w * 4 < n; w++) view.setUint32(p + w * 4, encCacheWords[base + w], IS_LE);
  opos = p + n;
}

function encAndKeep(s, slot) {
  const h = opos;
  encString(s);
  const n = opos - h;
  // Only plain MessagePack strings (fixstr, str8) are kept, never an extension such as STRING16.
  const first = out[h];
  if (n <= KEY_WORDS * 4 && ((first >= 0xa0 && first <= 0xbf) || first === 0xd9)) {
    const base = slot * KEY_WORDS * 4;
    for (let i = 0; i < n; i++) encCacheBytes[base + i] = out[h + i];
    encCacheLen[slot] = n;
    encCache[slot] = s;
  }
}

// Slot `to` takes what slot `from` holds for the string s.
function copyInto(from, to, s) {
  if (encCache[from] !== s) return;
  const n = encCacheLen[from];
  const a = from * KEY_WORDS;
  const b = to * KEY_WORDS;
  for (let w = 0; w < KEY_WORDS; w++) encCacheWords[b + w] = encCacheWords[a + w];
  encCacheLen[to] = n;
  encCache[to] = s;
}

function encKey(k, j) {
  if (j >= KEY_SLOTS) {
    encString(k);
  } else if (encCache[j] === k) {
    copyCached(j);
  } else {
    encKeyHashed(k, j);
  }
}

// A key that missed at its position j < KEY_SLOTS: its hash slot, then (a key new there too) kept in both.
// Keys past the cached positions are not looked up there: the keys of a wide object would only take turns in
// the same slots (a 200-key object encoded 15-75% slower with them).
function encKeyHashed(k, j) {
  const n = k.length;
  const mix = n === 0 ? 0 : n * 7 + k.charCodeAt(0) * 3 + k.charCodeAt(n - 1);
  const slot = HASH_BASE + (mix & (HASH_SLOTS - 1));
  if (encCache[slot] === k) {
    copyCached(slot);
  } else {
    encAndKeep(k, j);
    copyInto(j, slot, k);
  }
}

// A string value of the property at position j < KEY_SLOTS.
function encValueString(s, j) {
  const misses = valueMisses[j];
  if (misses < VALUE_TRIES) {
    const slot = KEY_SLOTS + j;
    if (encCache[slot] === s) {
      valueMisses[j] = 0;
      copyCached(slot);
      return;
    }
    valueMisses[j] = misses + 1;
    if (s.length <= MAX_CACHED_CHARS) {
      keepUntilTurnEnds();
      if (valueSeen[j] === s) {
        encAndKeep(s, slot);
        return;
      }
      valueSeen[j] = s;
    }
  }
  encString(s);
}

function forgetValueStrings() {
  for (let j = 0; j < KEY_SLOTS; j++) {
    emptySlot(KEY_SLOTS + j);
    valueSeen[j] = '';
    valueMisses[j] = 0;
  }
  jForgetValues();
}

// Own enumerable string-keyed properties, in property order (for-in visits
// exactly those plus inherited enumerable ones, which hasOwnProperty drops).
// One pass: a fixmap header is reserved and rewritten once the count is
// known (moving the entries in the rare case of 16 or more). for-in takes
// its list of keys when it starts: properties that a getter adds are not
// visited, ones that a getter deletes before their turn are skipped.
function encPlain(v, depth) {
  if (opos + 1 > out.length) grow(1);
  const h = opos;
  opos = h + 1;
  let written = 0;
  for (const k in v) {
    if (!hasOwnProperty.call(v, k)) continue;
    encKey(k, written);
    try {
      const value = v[k];
      if (typeof value === 'string' && written < KEY_SLOTS) encValueString(value, written);
      else encValue(value, depth + 1);
    } catch (e) {
      throw addSeg(e, SEG_KEY, k);
    }
    written++;
  }
  if (written < 16) out[h] = 0x80 | written;
  else fixHeaderCount(h, 0, written, 0x80, 0xde, 0xdf);
}

// The count differs from the one the header was written with: rewrite the
// header, moving what follows it if its size changes.
function fixHeaderCount(h, guessed, actual, fix, c16, c32) {
  const hsOld = guessed < 16 ? 1 : guessed < 0x10000 ? 3 : 5;
  const hsNew = actual < 16 ? 1 : actual < 0x10000 ? 3 : 5;
  const end = opos;
  if (hsNew > hsOld && end + hsNew - hsOld > out.length) grow(hsNew - hsOld);
  if (hsNew !== hsOld) {
    out.copyWithin(h + hsNew, h + hsOld, end);
    if (W.hasOutOfLine) W.shiftExternal(h + hsOld, hsNew - hsOld);
  }
  opos = h;
  containerHeader(actual, fix, c16, c32);
  opos = end + hsNew - hsOld;
}

// A dense array without named properties goes as a MessagePack array; one
// with holes or named properties (a RegExp match's index/input/groups) goes
// in the general form. JavaScript offers no cheaper way to see named
// properties than counting the own keys (~20 ns per element, as V8 turns
// each index into a string): that is the price of keeping them as
// structured clone does. A hole and a named property can leave the count
// unchanged, so holes are also looked for element by element.
function encArray(v, depth) {
  const len = v.length;
  if (objectKeys(v).length > len) {
    encSparseArray(v, depth);
    return;
  }
  const h = opos;
  const mark = refCount;
  arrayHeader(len);
  for (let i = 0; i < len; i++) {
    const x = v[i];
    // Numbers first, outside the try: encNumber() throws nothing a path would be added to, and an array of
    // numbers then skips the hole check and encValue()'s type tests (100 numbers: 16-31% less time).
    if (typeof x === 'number') {
      encNumber(x);
      continue;
    }
    if (x === undefined && !(i in v)) {
      // A hole: start over with the general (sparse) form.
      opos = h;
      refTruncate(mark);
      if (W.extAt.length !== 0) W.truncate(h);
      encSparseArray(v, depth);
      return;
    }
    try {
      encValue(x, depth + 1);
    } catch (e) {
      throw addSeg(e, SEG_INDEX, i);
    }
  }
}

const CANONICAL_INDEX = /^(?:0|[1-9][0-9]*)$/;

function arrayIndexOf(k) {
  if (!CANONICAL_INDEX.test(k)) return -1;
  const n = +k;
  return n < 4294967295 ? n : -1;
}

function encSparseArray(v, depth) {
  const keys = objectKeys(v);
  const h = extBegin();
  arrayHeader(1 + keys.length * 2);
  encNumber(v.length);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const idx = arrayIndexOf(k);
    if (idx !== -1) encNumber(idx);
    else encString(k);
    try {
      encValue(v[k], depth + 1);
    } catch (e) {
      throw addSeg(e, idx !== -1 ? SEG_INDEX : SEG_KEY, idx !== -1 ? idx : k);
    }
  }
  extEnd(h, EXT.ARRAY);
}

function binHeader(n) {
  if (opos + 5 > out.length) grow(5);
  const b = out;
  const p = opos;
  if (n < 0x100) {
    b[p] = 0xc4; b[p + 1] = n; opos = p + 2;
  } else if (n < 0x10000) {
    b[p] = 0xc5; b[p + 1] = n >>> 8; b[p + 2] = n & 0xff; opos = p + 3;
  } else {
    b[p] = 0xc6; b[p + 1] = n >>> 24; b[p + 2] = (n >>> 16) & 0xff;
    b[p + 3] = (n >>> 8) & 0xff; b[p + 4] = n & 0xff; opos = p + 5;
  }
}

function encBin(v) {
  const n = v.length;
  if (sharing(n) && shareBytes(0xc4, new Uint8Array(v.buffer, v.byteOffset, n))) return;
  binHeader(n);
  if (n >= W.externalMin) {
    addExternal(new Uint8Array(v.buffer, v.byteOffset, n));
    return;
  }
  if (opos + n > out.length) grow(n);
  if (n > 0) out.set(v, opos);
  opos += n;
}

function isDetached(ab) {
  if (arrayBufferDetached !== undefined) return arrayBufferDetached.call(ab);
  if (arrayBufferByteLength.call(ab) !== 0) return false;
  try {
    new Uint8Array(ab, 0, 0);   // eslint-disable-line no-new
    return false;
  } catch {
    return true;
  }
}

// Copies bytes [off, off + len) of an ArrayBuffer into the output; swaps
// element bytes to little-endian on big-endian hosts.
function writeBytes(ab, off, len, elemSize) {
  if (len >= W.externalMin && (IS_LE || elemSize === 1)) {
    addExternal(new Uint8Array(ab, off, len));
    return;
  }
  if (opos + len > out.length) grow(len);
  if (len > 0) {
    out.set(new Uint8Array(ab, off, len), opos);
    if (!IS_LE && elemSize > 1) swapBytes(out, opos, len, elemSize);
  }
  opos += len;
}

function swapBytes(buf, off, len, elemSize) {
  const view = Buffer.from(buf.buffer, buf.byteOffset + off, len);
  if (elemSize === 2) view.swap16();
  else if (elemSize === 4) view.swap32();
  else view.swap64();
}

function encView(v) {
  if (v instanceof Buffer) {
    encBin(v);
    return;
  }
  const tag = typedArrayTag.call(v);
  const isDataView = tag === undefined;
  let type = EXT.DATAVIEW;
  if (!isDataView) {
    type = TYPED_EXT[tag];
    if (type === undefined) throw new PathError(`is a ${tag}, which is not supported`);
  }
  const ab = isDataView ? dataViewBuffer.call(v) : v.buffer;
  if (isSharedArrayBuffer(ab)) throw new PathError('is backed by a SharedArrayBuffer');
  if (isDetached(ab)) throw new PathError('is backed by a detached ArrayBuffer');
  const off = isDataView ? dataViewByteOffset.call(v) : v.byteOffset;
  const len = isDataView ? dataViewByteLength.call(v) : v.byteLength;
  if (sharing(len) && IS_LE && shareBytes(type, new Uint8Array(ab, off, len))) return;
  extHeader(type, len);
  writeBytes(ab, off, len, isDataView ? 1 : v.BYTES_PER_ELEMENT);
}

function encOther(v, depth) {
  if (isArrayBufferView(v)) {
    encView(v);
  } else if (isDate(v)) {
    extHeader(EXT.DATE, 8);
    if (opos + 8 > out.length) grow(8);
    writeF64(out, opos, dateGetTime.call(v));
    opos += 8;
  } else if (isMap(v)) {
    encMap(v, depth);
  } else if (isSet(v)) {
    encSet(v, depth);
  } else if (isNativeError(v)) {
    encError(v, depth);
  } else if (isRegExp(v)) {
    const h = extBegin();
    arrayHeader(2);
    encString(regExpSource.call(v));
    encString(regExpFlags.call(v));
    extEnd(h, EXT.REGEXP);
  } else if (isAnyArrayBuffer(v)) {
    if (isSharedArrayBuffer(v)) throw new PathError('is a SharedArrayBuffer');
    if (isDetached(v)) throw new PathError('is a detached ArrayBuffer');
    const len = arrayBufferByteLength.call(v);
    if (sharing(len) && shareBytes(EXT.ARRAYBUFFER, new Uint8Array(v, 0, len))) return;
    extHeader(EXT.ARRAYBUFFER, len);
    writeBytes(v, 0, len, 1);
  } else if (isBoxedPrimitive(v)) {
    encBoxed(v);
  } else {
    const why = rejectReason(v);
    if (why !== null) throw new PathError(why);
    encPlain(v, depth);                  // class instance
  }
}

// Objects that structured clone refuses, among those not already handled.
// Class instances are the common case here; objects whose toString tag is
// plain "[object Object]" skip the individual brand checks.
const BUILTIN_TAG = /^\[object (Intl\.\w+|[\w ]*Iterator|AsyncGenerator)\]$/;

function rejectReason(v) {
  if (v === globalThis) return 'is the global object';
  const tag = objectToString.call(v);
  if (tag === '[object Object]') return null;
  if (isPromise(v)) return 'is a Promise';
  if (isWeakMap(v)) return 'is a WeakMap';
  if (isWeakSet(v)) return 'is a WeakSet';
  if (isGeneratorObject(v)) return 'is a generator object';
  if (isMapIterator(v) || isSetIterator(v)) return 'is an iterator';
  if (isArgumentsObject(v)) return 'is an arguments object';
  if (isModuleNamespaceObject(v)) return 'is a module namespace object';
  if (isExternal(v)) return 'is an external object';
  if (tag === '[object WeakRef]' && weakRefDeref !== undefined) {
    try { weakRefDeref.call(v); return 'is a WeakRef'; } catch { /* not one */ }
  }
  if (tag === '[object FinalizationRegistry]' && finRegUnregister !== undefined) {
    try { finRegUnregister.call(v, UNREGISTER_TOKEN); return 'is a FinalizationRegistry'; } catch { /* not one */ }
  }
  const m = BUILTIN_TAG.exec(tag);
  if (m !== null) return `is ${/^[AEIOU]/.test(m[1]) ? 'an' : 'a'} ${m[1]} object`;
  return null;
}

function encMap(v, depth) {
  const items = [];
  mapForEach.call(v, (value, key) => { items.push(key, value); });
  const h = extBegin();
  arrayHeader(items.length);
  for (let i = 0; i < items.length; i += 2) {
    try {
      encValue(items[i], depth + 1);
    } catch (e) {
      throw addSeg(e, SEG_MAPKEY, i >> 1);
    }
    try {
      encValue(items[i + 1], depth + 1);
    } catch (e) {
      throw addSeg(e, SEG_MAPVAL, items[i]);
    }
  }
  extEnd(h, EXT.MAP);
}

function encSet(v, depth) {
  const items = [];
  setForEach.call(v, (value) => { items.push(value); });
  const h = extBegin();
  arrayHeader(items.length);
  for (let i = 0; i < items.length; i++) {
    try {
      encValue(items[i], depth + 1);
    } catch (e) {
      throw addSeg(e, SEG_SETVAL, i);
    }
  }
  extEnd(h, EXT.SET);
}

function encBoxed(v) {
  const h = extBegin();
  arrayHeader(1);
  if (isNumberObject(v)) encNumber(numberValueOf.call(v));
  else if (isStringObject(v)) encString(stringValueOf.call(v));
  else if (isBooleanObject(v)) encValue(booleanValueOf.call(v), 1);
  else if (isBigIntObject(v)) encBigInt(bigintValueOf.call(v));
  else throw new PathError('is a Symbol object');
  extEnd(h, EXT.BOXED);
}

function readStack(error) {
  try {
    return error.stack;
  } catch {
    return undefined;
  }
}

// name, message, stack and cause, as V8's structured clone keeps them:
// the prototype follows `name` if it is one of the standard error names;
// message/stack/cause are taken only from own data properties.
function encError(v, depth) {
  const rawName = v.name;
  const name = typeof rawName === 'string' && ERROR_CTORS[rawName] !== undefined ? rawName : 'Error';
  const md = getOwnPropertyDescriptor(v, 'message');
  const message = md !== undefined && hasOwnProperty.call(md, 'value') ? md.value : undefined;
  const hasMessage = md !== undefined && hasOwnProperty.call(md, 'value');
  const sd = getOwnPropertyDescriptor(v, 'stack');
  // Node 20 stores the stack as a data property; from Node 22 (V8 12.4+) it is an own accessor that V8
  // installs on every error, read like structured clone does.
  const stackValue = sd === undefined ? undefined : hasOwnProperty.call(sd, 'value') ? sd.value : readStack(v);
  const stack = typeof stackValue === 'string' ? stackValue : undefined;
  const cd = getOwnPropertyDescriptor(v, 'cause');
  const hasCause = cd !== undefined && hasOwnProperty.call(cd, 'value');

  const h = extBegin();
  mapHeader(1 + (hasMessage ? 1 : 0) + (stack !== undefined ? 1 : 0) + (hasCause ? 1 : 0));
  encString('name');
  encString(name);
  if (hasMessage) {
    encString('message');
    encString(typeof message === 'string' ? message : String(message));
  }
  if (stack !== undefined) {
    encString('stack');
    encString(stack);
  }
  if (hasCause) {
    encString('cause');
    try {
      encValue(cd.value, depth + 1);
    } catch (e) {
      throw addSeg(e, SEG_CAUSE, null);
    }
  }
  extEnd(h, EXT.ERROR);
}

// ---------------------------------------------------------------------------
// encodeAdvanced

function encodeAdvanced(writer, value) {
  if (encBusy) {
    encodeNested(writer, value);
    return;
  }
  encBusy = true;
  W = writer;
  out = writer.buf;
  opos = writer.pos;
  try {
    encValue(value, 1);
    writer.pos = opos;
  } catch (e) {
    throw publicEncodeError(e);
  } finally {
    refClear();
    encodeDone();
  }
}

// Returns the encoder to its idle state (either serialization), letting go of a large output buffer's view.
function encodeDone() {
  encBusy = false;
  W = null;
  out = EMPTY;
  if (outViewBuf !== null && outViewBuf.length > VIEW_KEEP_MAX) {
    outView = null;
    outViewBuf = null;
  }
}

// encodeAdvanced() called from user code (a getter) while encoding.
function encodeNested(writer, value) {
  if (writer === W) {
    throw unserializable('encodeAdvanced() was called re-entrantly on the Writer that is being written');
  }
  const sW = W, sPos = opos, sAll = refAll, sCount = refCount, sMap = refMap;
  sW.pos = sPos;
  W = writer; out = writer.buf; opos = writer.pos;
  refAll = []; refCount = 0; refMap = null;
  try {
    encValue(value, 1);
    writer.pos = opos;
  } catch (e) {
    throw publicEncodeError(e);
  } finally {
    W = sW; out = sW.buf; opos = sPos;
    refAll = sAll; refCount = sCount; refMap = sMap;
  }
}

// ---------------------------------------------------------------------------
// Decoder errors

function badPayload(message) {
  const e = new Error(`Invalid IPC payload: ${message}`);
  e.code = 'ERR_IPC_BAD_PAYLOAD';
  return e;
}

// ---------------------------------------------------------------------------
// UTF-8 decoding shared by both decoders.

// Cache of short ASCII strings (object keys repeat across messages). A hit is
// verified against the slot's copy of the bytes, so collisions only cost a
// miss. Strings used as object keys are stored in their internalized form,
// which is what V8's keyed stores look up (a non-internalized key costs a
// string table lookup on every store).
//
// The copy is kept as 32-bit words, read from the source through a DataView:
// for n >= 4 bytes, the words at 0 and n - 4 (overlapping), then those at 4
// and 8 that they leave out; 1 to 3 bytes are packed into one word. The first
// and last words also pick the slot (sequential keys such as key0..key199 take
// 200 slots; the three sampled bytes used before gave them 30). Byte by byte,
// a hit cost two typed-array loads per byte, each a full inline-cache dispatch
// until V8 optimizes the decoder. callgrind, 200k small messages: 409.6M ->
// 330.8M instructions warm (-19%), 486.6M -> 413.0M in a fresh process's
// first round (-15%). decodeShortString() must stay under V8's 460 bytes of
// bytecode for inlining (it is 406): a hash of 7 shifts put it over and cost
// 13% warm.
const STR_CACHE_BITS = 12;
const STR_CACHE_SIZE = 1 << STR_CACHE_BITS;
const STR_CACHE_MASK = STR_CACHE_SIZE - 1;
const SHORT_DECODE = 16;                                          // bytes; 4 words a slot
const strCache = new Array(STR_CACHE_SIZE).fill('');
const strCacheLen = new Uint8Array(STR_CACHE_SIZE);              // 0: empty
const strCacheWords = new Uint32Array(STR_CACHE_SIZE * (SHORT_DECODE >> 2));
const strCacheInterned = new Uint8Array(STR_CACHE_SIZE);

// The DataView the cache reads words through, over the last source buffer that held a short string. The
// channel decodes every batch from the same landing buffer or one buffer a batch, so it is made once per
// buffer, not per string. decodeReset() lets go of one larger than a batch can be (a large message's own).
const WORD_VIEW_KEEP = 1024 * 1024;
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));
// `var` like the rest of the hot module state (see above); as `let` they cost 2% of a fresh process's decoding.
var wordBuf = EMPTY;
var wordView = EMPTY_VIEW;

function bindWordView(b) {
  wordBuf = b;
  wordView = new DataView(b.buffer, b.byteOffset, b.length);
}

/**
 * Called by the channel with each batch before decoding from it. decodeShortString() binds a new buffer itself,
 * but that call runs once a batch, too rarely for V8 to have recorded it when it optimizes the decoder: met
 * there, it threw the optimized decoder away (and every function that had inlined it) in a fresh process.
 * A large message's own buffer is left to decodeShortString(), so that only a decode binds (and releases) it.
 */
function useSource(b) {
  if (b !== wordBuf && b.length <= WORD_VIEW_KEEP) bindWordView(b);
}

/** Lets go of a source buffer larger than a batch, at the end of every decode. */
function releaseLargeSource() {
  if (wordBuf.length > WORD_VIEW_KEEP) {
    wordBuf = EMPTY;
    wordView = EMPTY_VIEW;
  }
}

function internalize(s) {
  if (s === '__proto__') return s;
  const o = {};
  o[s] = 0;
  const k = objectKeys(o)[0];
  return k === s ? k : s;
}

function asciiChars(b, p, n) {
  switch (n) {
    case 0: return '';
    case 1: return fromCharCode(b[p]);
    case 2: return fromCharCode(b[p], b[p + 1]);
    case 3: return fromCharCode(b[p], b[p + 1], b[p + 2]);
    case 4: return fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3]);
    case 5: return fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4]);
    case 6: return fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5]);
    case 7: return fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6]);
    case 8: return fromCharCode(b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
    default: return asciiChars(b, p, 8) + asciiChars(b, p + 8, n - 8);
  }
}

function decodeShortString(b, p, n, isKey) {
  // The string's first and last words (one word for 1 to 3 bytes) pick the slot and are compared first.
  let first, last;
  if (n < 4) {
    if (n === 0) return '';
    first = b[p] | (n > 1 ? b[p + 1] << 8 : 0) | (n > 2 ? b[p + 2] << 16 : 0);
    last = first;
  } else {
    if (b !== wordBuf) bindWordView(b);
    first = wordView.getUint32(p, true);
    last = wordView.getUint32(p + n - 4, true);
  }
  const mix = first ^ (last >>> 8);
  const slot = (mix ^ (mix >>> 13) ^ (n << 7)) & STR_CACHE_MASK;
  const w = slot << 2;
  if (strCacheLen[slot] === n && strCacheWords[w] === first && strCacheWords[w + 1] === last &&
      (n <= 8 || (wordView.getUint32(p + 4, true) === strCacheWords[w + 2] &&
                  (n <= 12 || wordView.getUint32(p + 8, true) === strCacheWords[w + 3])))) {
    if (isKey && strCacheInterned[slot] === 0) return internSlot(slot);
    return strCache[slot];
  }
  return decodeShortMiss(b, p, n, isKey, slot, first, last);
}

// A cached value string met as an object key: stored from now on in the form keyed stores look up.
function internSlot(slot) {
  strCacheInterned[slot] = 1;
  return (strCache[slot] = internalize(strCache[slot]));
}

// A short string not in the cache: decoded, and cached in `slot` if ASCII.
function decodeShortMiss(b, p, n, isKey, slot, first, last) {
  for (let j = 0; j < n; j++) {
    if (b[p + j] >= 0x80) return decodeUtf8Js(b, p, n);
  }
  let s = asciiChars(b, p, n);
  if (isKey) s = internalize(s);
  strCache[slot] = s;
  strCacheLen[slot] = n;
  strCacheInterned[slot] = isKey ? 1 : 0;
  const w = slot << 2;
  strCacheWords[w] = first;
  strCacheWords[w + 1] = last;
  if (n > 8) strCacheWords[w + 2] = wordView.getUint32(p + 4, true);
  if (n > 12) strCacheWords[w + 3] = wordView.getUint32(p + 8, true);
  return s;
}

// Validating UTF-8 decoder for short non-ASCII strings.
function decodeUtf8Js(b, p, n) {
  const end = p + n;
  const units = [];
  while (p < end) {
    const c = b[p++];
    if (c < 0x80) {
      units.push(c);
      continue;
    }
    let cp, need, min;
    if (c >= 0xc2 && c <= 0xdf) { cp = c & 0x1f; need = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { cp = c & 0x0f; need = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { cp = c & 0x07; need = 3; min = 0x10000; }
    else throw badPayload('string is not valid UTF-8');
    if (p + need > end) throw badPayload('string is not valid UTF-8 (truncated sequence)');
    for (let k = 0; k < need; k++) {
      const d = b[p++];
      if ((d & 0xc0) !== 0x80) throw badPayload('string is not valid UTF-8');
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      throw badPayload('string is not valid UTF-8');
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      units.push(cp);
    }
  }
  return fromCharCode.apply(null, units);
}

// Set by the channel when Node can make external strings: (buffer, start, end, latin1) => a string over
// those bytes, without copying them (the string keeps the buffer alive). Used from ZERO_COPY_MIN on, like
// binary views, so never on the channel's reused landing buffer.
var externalString;

function useExternalStrings(fn) {
  externalString = fn;
}

// Shared-memory values: `map(fd, offset, length)` gives a Buffer over the memfd a peer passed (src/shared.rs),
// `close(fd)` lets an unsent one go. `useFds` names the channel's queue of received descriptors, which the
// values take in order, and the largest value it accepts.
var mapShared = undefined;
var sharedFds = undefined;
var sharedMax = 0;
// Shared values decoded since the channel last asked (it tells the peer: a TAKEN frame).
var sharedTaken = 0;

function takeSharedTaken() {
  const n = sharedTaken;
  sharedTaken = 0;
  return n;
}

function useShared(map, close) {
  mapShared = map;
  closeShared = close;
}

function useFds(fds, max) {
  sharedFds = fds;
  sharedMax = max;
}

function rdU64At(p) {
  const hi = (src[p] << 24 | src[p + 1] << 16 | src[p + 2] << 8 | src[p + 3]) >>> 0;
  const lo = (src[p + 4] << 24 | src[p + 5] << 16 | src[p + 6] << 8 | src[p + 7]) >>> 0;
  return hi * 0x100000000 + lo;
}

function readShared(p, len) {
  if (len !== 17) throw bad('SHARED payload must be 17 bytes');
  const what = src[p];
  const offset = rdU64At(p + 1);
  const n = rdU64At(p + 9);
  const Ctor = what >= 16 && what <= 27 ? TYPED_CTOR[what - 16] : undefined;
  if (what !== 0xc4 && what !== 0xa0 && what !== EXT.STRING16 && what !== EXT.DATAVIEW && what !== EXT.ARRAYBUFFER &&
      Ctor === undefined) {
    throw bad(`SHARED value of unknown form ${what}`);
  }
  if (offset > Number.MAX_SAFE_INTEGER || n > Number.MAX_SAFE_INTEGER) throw bad('SHARED range out of bounds');
  if (n > sharedMax) throw bad(`SHARED value of ${n} bytes exceeds the limit of ${sharedMax} bytes (maxMessageSize)`);
  const size = Ctor !== undefined ? Ctor.BYTES_PER_ELEMENT : what === EXT.STRING16 ? 2 : 1;
  if (n % size !== 0) throw bad(`SHARED payload length ${n} is not a multiple of ${size}`);
  const fd = sharedFds === undefined || mapShared === undefined ? undefined : sharedFds.shift();
  if (fd === undefined) throw bad('SHARED value arrived without its descriptor');
  let buf;
  try {
    buf = mapShared(fd, offset, n, what === EXT.ARRAYBUFFER);
  } catch (e) {
    throw bad(e.message);
  }
  sharedTaken++;
  if (what === 0xa0 || what === EXT.STRING16) {
    const latin1 = what === 0xa0;
    // The mapping starts on a page, so the bytes' alignment is that of their offset in the file.
    if (externalString !== undefined && (latin1 || offset % 2 === 0)) {
      const s = externalString(buf, 0, n, latin1);
      rememberRelayed(s, buf, 0, n, latin1 ? RELAY_LATIN1 : RELAY_UTF16);
      return s;
    }
    return latin1 ? buf.latin1Slice(0, n) : buf.ucs2Slice(0, n);
  }
  let v;
  if (what === 0xc4 || what === EXT.ARRAYBUFFER) {
    v = buf;
  } else if (what === EXT.DATAVIEW) {
    v = new DataView(buf.buffer, buf.byteOffset, n);
  } else if (offset % size === 0) {
    v = new Ctor(buf.buffer, buf.byteOffset, n / size);
  } else {
    const ab = new ArrayBuffer(n);
    new Uint8Array(ab).set(buf);
    v = new Ctor(ab);
  }
  register(v);
  return v;
}

// quoted: the bytes are a JSON string's text without escapes, between quotes at p - 1 and p + n (jStr).
function decodeLongString(b, p, n, quoted) {
  // UTF-8 that starts with a character of three bytes or more (CJK text: in JSON text, or from a peer that does not
  // send it as STRING16) is read by the addon: V8 reads it at ~0.3 GB/s, the addon 3-4 times as fast from ~300
  // bytes (for Latin-1 text, and below, a call into the addon costs more than it saves).
  if (n >= NATIVE_UTF8_MIN && b[p] >= 0xe0 && nativeDecodeUtf8 !== undefined) {
    const s = nativeDecodeUtf8(b, p, p + n);
    if (s === undefined) throw badPayload('string is not valid UTF-8');
    return s;
  }
  if (n >= 1024 && isAscii(new Uint8Array(b.buffer, b.byteOffset + p, n))) {
    if (n >= ZERO_COPY_MIN && externalString !== undefined) {
      const s = externalString(b, p, p + n, true);
      rememberRelayed(s, b, p, p + n, quoted === true ? RELAY_QUOTED : RELAY_ONE_BYTE);
      return s;
    }
    return b.latin1Slice(p, p + n);    // plain copy, no UTF-8 decoding
  }
  const s = b.utf8Slice(p, p + n);
  // utf8Slice substitutes U+FFFD for malformed input: only then is a full
  // validation needed to tell a real U+FFFD from an error.
  if (s.indexOf('\ufffd') !== -1 && !isUtf8(new Uint8Array(b.buffer, b.byteOffset + p, n))) {
    throw badPayload('string is not valid UTF-8');
  }
  return s;
}

// ---------------------------------------------------------------------------
// Decoder state (decodeAdvanced never runs user code, but the state is still
// saved/restored so that nesting could not corrupt it).

var src = EMPTY;
var spos = 0;
var send = 0;
var sbase = 0;
var dRefs = [];
var nRefs = 0;

const PENDING = {};

function bad(message) {
  return badPayload(`${message} (at byte ${spos - sbase})`);
}

function need(n) {
  if (n > send - spos) throw bad('unexpected end of data');
}

function rdU8() {
  need(1);
  return src[spos++];
}

function rdU16() {
  need(2);
  const p = spos;
  spos = p + 2;
  return (src[p] << 8) | src[p + 1];
}

function rdU32() {
  need(4);
  const p = spos;
  spos = p + 4;
  return src[p] * 0x1000000 + ((src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]);
}

// Float reads go through the scratch array until a decode has seen a few,
// then through a DataView over the input (cheaper per read, costly to make).
var srcView = null;
var srcFloats = 0;

function rdF64At(p) {
  if (srcView !== null) return srcView.getFloat64(p);
  return rdF64Slow(p);
}

function rdF64Slow(p) {
  if (++srcFloats > 8) {
    srcView = new DataView(src.buffer, src.byteOffset, src.length);
    return srcView.getFloat64(p);
  }
  if (IS_LE) {
    f64b[7] = src[p]; f64b[6] = src[p + 1]; f64b[5] = src[p + 2]; f64b[4] = src[p + 3];
    f64b[3] = src[p + 4]; f64b[2] = src[p + 5]; f64b[1] = src[p + 6]; f64b[0] = src[p + 7];
  } else {
    for (let i = 0; i < 8; i++) f64b[i] = src[p + i];
  }
  return f64[0];
}

function rdF64() {
  need(8);
  const p = spos;
  spos = p + 8;
  return rdF64At(p);
}

function rdF32() {
  need(4);
  const p = spos;
  spos = p + 4;
  if (IS_LE) {
    f32b[3] = src[p]; f32b[2] = src[p + 1]; f32b[1] = src[p + 2]; f32b[0] = src[p + 3];
  } else {
    for (let i = 0; i < 4; i++) f32b[i] = src[p + i];
  }
  return f32[0];
}

// 64-bit integers: a Number when exactly representable as a safe integer,
// otherwise a BigInt (never a rounded Number).
function rdU64() {
  const hi = rdU32();
  const lo = rdU32();
  const v = hi * 4294967296 + lo;
  if (Number.isSafeInteger(v)) return v;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function rdI64() {
  const hi = rdU32();
  const lo = rdU32();
  const shi = hi | 0;
  const v = shi * 4294967296 + lo;
  if (Number.isSafeInteger(v)) return v;
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));
}

function register(obj) {
  dRefs[nRefs++] = obj;
}

function read(depth) {
  if (spos >= send) throw bad('unexpected end of data');
  const b = src[spos++];
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b >= 0xa0 && b < 0xc0) {
    // readStr(b & 0x1f), written out: the call cost 1% of a warm decode and 1% of a cold one (callgrind)
    const n = b & 0x1f;
    const p = spos;
    if (n > send - p) throw bad(`string length ${n} exceeds the remaining data`);
    spos = p + n;
    return n <= SHORT_DECODE ? decodeShortString(src, p, n, false) : decodeLongString(src, p, n);
  }
  if (b < 0x90) return readMap(b & 0x0f, depth);
  if (b >= 0xcc && b <= 0xce) {
    // uint8/16/32 by one loop: a counter that outgrows a size takes the same path, not a branch that V8 has
    // not seen yet (which would deoptimize the decoder the first time it is taken)
    const n = 1 << (b - 0xcc);
    let p = spos;
    if (n > send - p) throw bad('unexpected end of data');
    const e = p + n;
    let v = 0;
    while (p < e) v = v * 256 + src[p++];
    spos = e;
    return v;
  }
  if (b < 0xa0) return readArray(b & 0x0f, depth);
  if (b === 0xc0) return null;
  if (b === 0xc2) return false;
  if (b === 0xc3) return true;
  if (b === 0xcb) return rdF64();
  return readRare(b, depth);
}

// The less common types, out of read() so that read() stays small: V8 optimizes a function after a number of
// interrupt ticks that grows with its bytecode length, and a process runs interpreted code until then.
function readRare(b, depth) {
  switch (b) {
    case 0xc4: return readBin(rdU8(), depth);
    case 0xc5: return readBin(rdU16(), depth);
    case 0xc6: return readBin(rdU32(), depth);
    case 0xc7: return readExt(rdU8(), depth);
    case 0xc8: return readExt(rdU16(), depth);
    case 0xc9: return readExt(rdU32(), depth);
    case 0xca: return rdF32();
    case 0xcf: return rdU64();
    case 0xd0: return (rdU8() << 24) >> 24;
    case 0xd1: return (rdU16() << 16) >> 16;
    case 0xd2: return rdU32() | 0;
    case 0xd3: return rdI64();
    case 0xd4: return readExt(1, depth);
    case 0xd5: return readExt(2, depth);
    case 0xd6: return readExt(4, depth);
    case 0xd7: return readExt(8, depth);
    case 0xd8: return readExt(16, depth);
    case 0xd9: return readStr(rdU8());
    case 0xda: return readStr(rdU16());
    case 0xdb: return readStr(rdU32());
    case 0xdc: return readArray(rdU16(), depth);
    case 0xdd: return readArray(rdU32(), depth);
    case 0xde: return readMap(rdU16(), depth);
    case 0xdf: return readMap(rdU32(), depth);
    default: // 0xc1
      spos--;
      throw bad('reserved byte 0xc1');
  }
}

function readStr(n) {
  if (n > send - spos) throw bad(`string length ${n} exceeds the remaining data`);
  const p = spos;
  spos = p + n;
  return n <= SHORT_DECODE ? decodeShortString(src, p, n, false) : decodeLongString(src, p, n);
}

function readKey(depth) {
  if (spos < send) {
    const b = src[spos];
    if (b >= 0xa0 && b < 0xc0) {
      const n = b & 0x1f;
      const p = spos + 1;
      if (n > send - p) throw bad(`string length ${n} exceeds the remaining data`);
      spos = p + n;
      return n <= SHORT_DECODE ? decodeShortString(src, p, n, true) : decodeLongString(src, p, n);
    }
  }
  const k = read(depth);
  if (typeof k !== 'string') throw bad('object key is not a string');
  return k;
}

// The first MAP_UNROLL properties are stored by separate statements: each
// `obj[k] = v` has its own inline cache, so when messages tend to put the
// same key at the same position (the usual case: a handful of message
// shapes) each store stays monomorphic or polymorphic with cached
// transitions. One shared store in a loop sees every key of every shape
// and goes megamorphic, which costs ~4x as much per property.
// Four, not eight: each unrolled statement inlines the key and value decoders, which V8 compiles before a fresh
// process decodes fast; eight cost 6% more instructions in a fresh process's first 200k small messages and 2.5%
// more warm (callgrind), and no fewer warm with five shapes of 3 to 8 properties.
const MAP_UNROLL = 4;

function defineOwn(obj, k, v) {
  defineProperty(obj, k, { value: v, writable: true, enumerable: true, configurable: true });
}

function readMap(n, depth) {
  if (depth > MAX_DEPTH) throw bad(`objects nested more than ${MAX_DEPTH} levels deep`);
  if (n > (send - spos) >>> 1) throw bad(`map of ${n} entries exceeds the remaining data`);
  const obj = {};
  dRefs[nRefs++] = obj;
  const d = depth + 1;
  let k, v;
  if (n === 0) return obj;
  k = readKey(d);
  v = read(d);
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  if (n === 1) return obj;
  k = readKey(d);
  v = read(d);
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  if (n === 2) return obj;
  k = readKey(d);
  v = read(d);
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  if (n === 3) return obj;
  k = readKey(d);
  v = read(d);
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  for (let i = MAP_UNROLL; i < n; i++) {
    k = readKey(d);
    v = read(d);
    if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  }
  return obj;
}

function readArray(n, depth) {
  if (depth > MAX_DEPTH) throw bad(`objects nested more than ${MAX_DEPTH} levels deep`);
  if (n > send - spos) throw bad(`array of ${n} elements exceeds the remaining data`);
  const arr = [];
  register(arr);
  for (let i = 0; i < n; i++) {
    // Numbers inline: avoids boxing doubles through read()'s return value.
    const p = spos;
    if (p < send) {
      const b = src[p];
      if (b < 0x80) {
        spos = p + 1;
        arr[i] = b;
        continue;
      }
      if (b === 0xcb && p + 9 <= send) {
        spos = p + 9;
        arr[i] = rdF64At(p + 1);
        continue;
      }
    }
    arr[i] = read(depth + 1);
  }
  return arr;
}

function copyToArrayBuffer(p, n) {
  const ab = new ArrayBuffer(n);
  if (n > 0) new Uint8Array(ab).set(new Uint8Array(src.buffer, src.byteOffset + p, n));
  return ab;
}

function readBin(n, depth) {
  if (depth > MAX_DEPTH) throw bad(`objects nested more than ${MAX_DEPTH} levels deep`);
  if (n > send - spos) throw bad(`bin length ${n} exceeds the remaining data`);
  const p = spos;
  spos = p + n;
  let buf;
  if (n >= ZERO_COPY_MIN) {
    buf = Buffer.from(src.buffer, src.byteOffset + p, n);
  } else {
    buf = Buffer.allocUnsafe(n);
    if (n > 0) buf.set(new Uint8Array(src.buffer, src.byteOffset + p, n));
  }
  register(buf);
  return buf;
}

// The payload of an ext holding values: [p, e) becomes the readable range.
function structHeader(what) {
  if (spos >= send) throw bad(`${what} payload is empty`);
  const b = src[spos++];
  let n;
  if (b >= 0x90 && b <= 0x9f) n = b & 0x0f;
  else if (b === 0xdc) n = rdU16();
  else if (b === 0xdd) n = rdU32();
  else throw bad(`${what} payload is not a MessagePack array`);
  if (n > send - spos) throw bad(`${what} payload claims ${n} items, more than the remaining data`);
  return n;
}

function structMapHeader(what) {
  if (spos >= send) throw bad(`${what} payload is empty`);
  const b = src[spos++];
  let n;
  if (b >= 0x80 && b <= 0x8f) n = b & 0x0f;
  else if (b === 0xde) n = rdU16();
  else if (b === 0xdf) n = rdU32();
  else throw bad(`${what} payload is not a MessagePack map`);
  return n;
}

function readString(depth, what) {
  const s = read(depth);
  if (typeof s !== 'string') throw bad(`${what} is not a string`);
  return s;
}

function readExt(len, depth) {
  if (spos >= send) throw bad('unexpected end of data');
  const type = src[spos++];
  if (len > send - spos) throw bad(`ext payload length ${len} exceeds the remaining data`);
  const p = spos;
  const e = p + len;
  spos = e;
  if (type > 3 && type !== EXT.LATIN1 && depth > MAX_DEPTH) throw bad(`objects nested more than ${MAX_DEPTH} levels deep`);
  switch (type) {
    case 0: // UNDEFINED
      if (len !== 1 || src[p] !== 0) throw bad('bad UNDEFINED payload');
      return undefined;
    case 1: { // REF
      let i;
      if (len === 1) i = src[p];
      else if (len === 2) i = (src[p] << 8) | src[p + 1];
      else if (len === 4) i = src[p] * 0x1000000 + ((src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]);
      else throw bad('bad REF payload length');
      if (i >= nRefs) throw bad(`back-reference to object #${i}, only ${nRefs} seen`);
      const obj = dRefs[i];
      if (obj === PENDING) throw bad(`back-reference to object #${i} that is still being decoded`);
      return obj;
    }
    case 2: return readBigInt(p, len);
    case 3: // STRING16
      if (len & 1) throw bad('STRING16 payload has an odd length');
      if (len >= ZERO_COPY_MIN && externalString !== undefined && IS_LE && (src.byteOffset + p) % 2 === 0) {
        return externalString(src, p, e, false);
      }
      return src.ucs2Slice(p, e);
    case 4: { // DATE
      if (len !== 8) throw bad('DATE payload must be 8 bytes');
      const t = rdF64At(p);
      if (t === t && !(Number.isInteger(t) && Math.abs(t) <= 8.64e15)) throw bad('DATE time value out of range');
      const d = new Date(t);
      register(d);
      return d;
    }
    case 5: return nested(p, e, readRegExp, depth);
    case 6: return nested(p, e, readMapExt, depth);
    case 7: return nested(p, e, readSetExt, depth);
    case 8: return nested(p, e, readError, depth);
    case 9: return nested(p, e, readSparseArray, depth);
    case 10: return nested(p, e, readBoxed, depth);
    case 11: { // ARRAYBUFFER
      const ab = copyToArrayBuffer(p, len);
      register(ab);
      return ab;
    }
    case 12: { // DATAVIEW
      const dv = len >= ZERO_COPY_MIN
        ? new DataView(src.buffer, src.byteOffset + p, len)
        : new DataView(copyToArrayBuffer(p, len));
      register(dv);
      return dv;
    }
    case 13: return readShared(p, len);
    case 14: // LATIN1
      if (len >= ZERO_COPY_MIN && externalString !== undefined) {
        const s = externalString(src, p, e, true);
        rememberRelayed(s, src, p, e, RELAY_LATIN1);
        return s;
      }
      return src.latin1Slice(p, e);
    case 0xff: return readTimestamp(p, len);
    default:
      if (type >= 16 && type <= 27) return readTypedArray(type, p, len);
      spos = p - 1;
      throw bad(`unknown ext type ${type > 127 ? type - 256 : type}`);
  }
}

function nested(p, e, fn, depth) {
  const savedEnd = send;
  spos = p;
  send = e;
  const v = fn(depth);
  if (spos !== e) throw bad('ext payload has trailing bytes');
  send = savedEnd;
  return v;
}

function readBigInt(p, len) {
  if (len === 0) throw bad('empty BIGINT payload');
  const sign = src[p];
  if (sign > 1) throw bad('bad BIGINT sign byte');
  if (len === 1) {
    if (sign !== 0) throw bad('BIGINT negative zero');
    return 0n;
  }
  if (src[p + 1] === 0) throw bad('BIGINT magnitude has a leading zero byte');
  let v;
  if (len <= 7) {
    let m = 0;
    for (let i = p + 1; i < p + len; i++) m = m * 256 + src[i];
    v = BigInt(m);
  } else {
    v = BigInt('0x' + src.hexSlice(p + 1, p + len));
  }
  return sign === 1 ? -v : v;
}

function readTypedArray(type, p, len) {
  const Ctor = TYPED_CTOR[type - 16];
  if (Ctor === undefined) throw bad(`typed array ext type ${type} is not supported by this runtime`);
  const size = Ctor.BYTES_PER_ELEMENT;
  if (len % size !== 0) throw bad(`typed array payload length ${len} is not a multiple of ${size}`);
  const off = src.byteOffset + p;
  let ta;
  if (len >= ZERO_COPY_MIN && (size === 1 || (IS_LE && off % size === 0))) {
    ta = new Ctor(src.buffer, off, len / size);
  } else {
    const ab = copyToArrayBuffer(p, len);
    if (!IS_LE && size > 1 && len > 0) swapBytes(Buffer.from(ab), 0, len, size);
    ta = new Ctor(ab);
  }
  register(ta);
  return ta;
}

function readTimestamp(p, len) {
  let sec, nsec;
  if (len === 4) {
    sec = src[p] * 0x1000000 + ((src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]);
    nsec = 0;
  } else if (len === 8) {
    const hi = src[p] * 0x1000000 + ((src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]);
    const lo = src[p + 4] * 0x1000000 + ((src[p + 5] << 16) | (src[p + 6] << 8) | src[p + 7]);
    nsec = Math.floor(hi / 4);
    sec = (hi % 4) * 4294967296 + lo;
  } else if (len === 12) {
    nsec = src[p] * 0x1000000 + ((src[p + 1] << 16) | (src[p + 2] << 8) | src[p + 3]);
    const hi = (src[p + 4] << 24) | (src[p + 5] << 16) | (src[p + 6] << 8) | src[p + 7];
    const lo = src[p + 8] * 0x1000000 + ((src[p + 9] << 16) | (src[p + 10] << 8) | src[p + 11]);
    sec = hi * 4294967296 + lo;
  } else {
    throw bad('bad timestamp payload length');
  }
  if (nsec >= 1e9) throw bad('timestamp nanoseconds out of range');
  const ms = sec * 1000 + Math.floor(nsec / 1e6);
  if (!(Math.abs(ms) <= 8.64e15)) throw bad('timestamp out of the Date range');
  const d = new Date(ms);
  register(d);
  return d;
}

function readRegExp(depth) {
  if (structHeader('REGEXP') !== 2) throw bad('REGEXP payload must hold 2 items');
  const source = readString(depth + 1, 'REGEXP source');
  const flags = readString(depth + 1, 'REGEXP flags');
  let re;
  try {
    re = new RegExp(source, flags);
  } catch (err) {
    throw bad(`bad REGEXP: ${err.message}`);
  }
  register(re);
  return re;
}

function readMapExt(depth) {
  const n = structHeader('MAP');
  if (n & 1) throw bad('MAP payload has an odd number of items');
  const m = new Map();
  register(m);
  for (let i = 0; i < n; i += 2) {
    const k = read(depth + 1);
    const v = read(depth + 1);
    mapSet.call(m, k, v);
  }
  return m;
}

function readSetExt(depth) {
  const n = structHeader('SET');
  const s = new Set();
  register(s);
  for (let i = 0; i < n; i++) setAdd.call(s, read(depth + 1));
  return s;
}

function readSparseArray(depth) {
  const n = structHeader('ARRAY');
  if ((n & 1) === 0) throw bad('ARRAY payload must hold a length and key/value pairs');
  const length = read(depth + 1);
  if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > 4294967295) {
    throw bad('ARRAY length is not a valid array length');
  }
  const arr = [];
  register(arr);
  for (let i = 1; i < n; i += 2) {
    const format = spos < send ? src[spos] : 0;
    const k = read(depth + 1);
    if (typeof k === 'number') {
      // An index is written in an int format; a float (even 1.0, or -0) is not one (PROTOCOL section 5.2.5).
      if (format === 0xca || format === 0xcb) throw bad('ARRAY index is a float, not an integer format');
      if (!Number.isInteger(k) || k < 0 || k >= length) throw bad(`ARRAY index ${k} out of range`);
      arr[k] = read(depth + 1);
    } else if (typeof k === 'string') {
      if (k === 'length' || arrayIndexOf(k) !== -1) throw bad(`ARRAY property key ${jsonStringify(k)} is not allowed`);
      const v = read(depth + 1);
      if (k === '__proto__') {
        defineProperty(arr, k, { value: v, writable: true, enumerable: true, configurable: true });
      } else {
        arr[k] = v;
      }
    } else {
      throw bad('ARRAY key is neither an index nor a string');
    }
  }
  arr.length = length;
  return arr;
}

function readBoxed(depth) {
  if (structHeader('BOXED') !== 1) throw bad('BOXED payload must hold 1 item');
  const slot = nRefs;
  register(PENDING);
  const v = read(depth + 1);
  const t = typeof v;
  if (t !== 'number' && t !== 'string' && t !== 'boolean' && t !== 'bigint') {
    throw bad('BOXED value is not a number, string, boolean or bigint');
  }
  const obj = Object(v);
  dRefs[slot] = obj;
  return obj;
}

// Constructs an error without capturing a stack trace: with a non-number
// Error.stackTraceLimit V8 skips the capture, so no formatting hook
// (Error.prepareStackTrace) can run later either.
function newError(Ctor) {
  const d = getOwnPropertyDescriptor(Error, 'stackTraceLimit');
  if (d === undefined || !hasOwnProperty.call(d, 'value') || !d.writable) return new Ctor();
  Error.stackTraceLimit = undefined;
  try {
    return new Ctor();
  } finally {
    Error.stackTraceLimit = d.value;
  }
}

const ERROR_FIELDS = { __proto__: null, message: 1, stack: 2, cause: 3 };

function readError(depth) {
  const n = structMapHeader('ERROR');
  if (n < 1 || n > 4) throw bad('ERROR payload must have 1 to 4 fields');
  if (readString(depth + 1, 'ERROR key') !== 'name') throw bad('ERROR payload must start with "name"');
  const name = readString(depth + 1, 'ERROR name');
  const Ctor = ERROR_CTORS[name];
  if (Ctor === undefined) throw bad(`unknown ERROR name ${jsonStringify(name)}`);
  const err = newError(Ctor);
  register(err);
  let last = 0;
  let stack;
  for (let i = 1; i < n; i++) {
    const key = readString(depth + 1, 'ERROR key');
    const field = ERROR_FIELDS[key];
    if (field === undefined || field <= last) throw bad(`unexpected ERROR field ${jsonStringify(key)}`);
    last = field;
    if (field === 1) {
      defineProperty(err, 'message', {
        value: readString(depth + 1, 'ERROR message'), writable: true, enumerable: false, configurable: true,
      });
    } else if (field === 2) {
      stack = readString(depth + 1, 'ERROR stack');
    } else {
      defineProperty(err, 'cause', {
        value: read(depth + 1), writable: true, enumerable: false, configurable: true,
      });
    }
  }
  defineProperty(err, 'stack', { value: stack, writable: true, enumerable: false, configurable: true });
  return err;
}

// ---------------------------------------------------------------------------
// decodeAdvanced

function toBuffer(buf) {
  if (buf instanceof Buffer) return buf;
  if (isArrayBufferView(buf)) return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  throw badPayload('input is not a Buffer');
}

function checkRange(buf, start, end) {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > buf.length) {
    throw badPayload(`bad range [${start}, ${end}) for a ${buf.length}-byte buffer`);
  }
}

function decodeAdvanced(buf, start, end) {
  if (!(buf instanceof Buffer)) buf = toBuffer(buf);
  // Fast range check; anything unusual (non-integers, NaN) goes to checkRange.
  if (!(typeof start === 'number' && typeof end === 'number' && (start | 0) === start &&
        (end | 0) === end && start >= 0 && end >= start && end <= buf.length)) {
    checkRange(buf, start, end);
  }
  if (src !== EMPTY) return decodeNested(buf, start, end);
  // Top level (the usual case): the decoder state is idle, nothing to save.
  src = buf; spos = start; send = end; sbase = start;
  let v;
  try {
    v = read(1);
    if (spos !== end) throw bad('trailing bytes after the value');
  } catch (e) {
    decodeReset();
    throw publicDecodeError(e);
  }
  decodeReset();
  return v;
}

// Returns the decoder to its idle state, dropping the references it holds.
function decodeReset() {
  const n = nRefs;
  if (n > 4096) {
    dRefs = [];
  } else {
    for (let i = 0; i < n; i++) dRefs[i] = undefined;
  }
  nRefs = 0;
  src = EMPTY; spos = 0; send = 0; sbase = 0;
  srcView = null; srcFloats = 0;
  releaseLargeSource();
}

// A run of messages from one buffer (the channel's batch): the decoder state is set up once for the run, not
// once a message, and a message's own checks are left to the caller, who sliced the frames.
var runRefs = 0;

/** Starts a run over `buf`; false if a decode is under way (decode message by message then). */
function beginRun(buf) {
  if (src !== EMPTY) return false;
  src = buf;
  runRefs = 0;
  return true;
}

/**
 * Decodes the value in [start, end) of the run's buffer `buf` (the one given to beginRun: the signature is
 * decodeAdvanced's); a failure is ERR_IPC_BAD_PAYLOAD (call endRun()).
 */
function runValue(buf, start, end) {
  if (nRefs > runRefs) runRefs = nRefs;
  spos = start; send = end; sbase = start; nRefs = 0;
  let v;
  try {
    v = read(1);
  } catch (e) {
    throw publicDecodeError(e);
  }
  if (spos !== end) throw publicDecodeError(bad('trailing bytes after the value'));
  return v;
}

/** Ends a run, dropping every reference the decoder held. */
function endRun() {
  if (runRefs > nRefs) nRefs = runRefs;
  decodeReset();
}

function publicDecodeError(e) {
  if (e !== null && typeof e === 'object' && e.code === 'ERR_IPC_BAD_PAYLOAD') return e;
  if (isStackOverflow(e)) return badPayload('value nested too deeply (the JavaScript stack was exhausted)');
  return badPayload(e instanceof Error ? e.message : String(e));
}

// decodeAdvanced() while a decode is under way (decoding runs no user code,
// so this is defensive): save the whole state, decode, restore.
function decodeNested(buf, start, end) {
  const sSrc = src, sPos = spos, sEnd = send, sBase = sbase, sRefs = dRefs, sN = nRefs;
  const sView = srcView, sFloats = srcFloats;
  dRefs = []; nRefs = 0;
  srcView = null; srcFloats = 0;
  src = buf; spos = start; send = end; sbase = start;
  try {
    const v = read(1);
    if (spos !== end) throw bad('trailing bytes after the value');
    return v;
  } catch (e) {
    throw publicDecodeError(e);
  } finally {
    dRefs = sRefs; nRefs = sN;
    src = sSrc; spos = sPos; send = sEnd; sbase = sBase;
    srcView = sView; srcFloats = sFloats;
  }
}

// ---------------------------------------------------------------------------
// JSON: encoder
//
// JSON.stringify's own algorithm (ECMA-262 SerializeJSONProperty, SerializeJSONObject, SerializeJSONArray and
// QuoteJSONString, without replacer or indent), writing UTF-8 straight into the Writer: the same user code runs
// in the same order (toJSON, getters, a Proxy's traps), so the bytes are those of JSON.stringify's text. V8's
// JSON.stringify builds a string that then has to be encoded again: 405 ns for the small message, where this
// takes 136-220 ns, and 46 ms for a 16 MiB string against 2.8 ms (JSON.stringify checks each character for
// escapes at ~2 ns; here utf8Write writes the string and the addon scans its bytes, see useJsonNative()).
// (node bench/codec-micro.mjs, best of rounds.)

// The escape of each ASCII character in a JSON string: 0 none, otherwise the character after the backslash
// (0x75 'u': \u00XX).
const JSON_ESC = new Uint8Array(128);
for (let c = 0; c < 0x20; c++) JSON_ESC[c] = 0x75;
JSON_ESC[0x08] = 0x62; JSON_ESC[0x09] = 0x74; JSON_ESC[0x0a] = 0x6e; JSON_ESC[0x0c] = 0x66; JSON_ESC[0x0d] = 0x72;
JSON_ESC[0x22] = 0x22; JSON_ESC[0x5c] = 0x5c;
const HEX_DIGITS = new Uint8Array([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]);

// Set by the channel: the addon's scans of long JSON strings (src/strings.rs), all (buffer, start, end):
// jsonPlainEnd, the index of the first byte in [start, end) that a JSON string cannot hold as it is (below 0x20,
// '"' or '\'), or end; jsonStringEnd, the closing quote of a string with escapes, or end; jsonEscapeCount and
// jsonEscapeInPlace(buffer, start, end, extra), the escaping of those bytes. A JS loop takes ~1.1 ns a byte, the
// addon ~130 ns a call and 0.08 ns a byte (16 MiB: ~18 ms against ~1.5); it is asked from JSON_SCAN_MIN bytes.
var jsonNative;
const JSON_SCAN_MIN = 256;
// The addon's decodeUtf8(buffer, start, end) (src/strings.rs): the string that UTF-8 holds, or undefined where it
// is not UTF-8; asked from NATIVE_UTF8_MIN bytes (decodeLongString).
var nativeDecodeUtf8;
const NATIVE_UTF8_MIN = 256;

function useJsonNative(native) {
  jsonNative = native;
  nativeDecodeUtf8 = native.decodeUtf8;
}

function jsonPlainEnd(b, p, end) {
  if (end - p >= JSON_SCAN_MIN && jsonNative !== undefined) return jsonNative.jsonPlainEnd(b, p, end);
  for (; p < end; p++) {
    const c = b[p];
    if (c < 0x20 || c === 0x22 || c === 0x5c) return p;
  }
  return end;
}

// The objects being serialized, outermost first (JSON.stringify's cycle check).
var jStack = [];
var jDepth = 0;

function jWriteUnitEscape(b, p, c) {
  b[p] = 0x5c; b[p + 1] = 0x75;
  b[p + 2] = HEX_DIGITS[c >> 12]; b[p + 3] = HEX_DIGITS[(c >> 8) & 15];
  b[p + 4] = HEX_DIGITS[(c >> 4) & 15]; b[p + 5] = HEX_DIGITS[c & 15];
  return p + 6;
}

function jWriteEscape(b, p, c) {
  const e = JSON_ESC[c];
  if (e === 0x75) return jWriteUnitEscape(b, p, c);
  b[p] = 0x5c; b[p + 1] = e;
  return p + 2;
}

// QuoteJSONString, character by character: the short strings, and any string that is not well-formed (a lone
// surrogate is written as its \u escape).
function jQuoteChars(s, len) {
  if (opos + 2 + len * 6 > out.length) grow(2 + len * 6);
  const b = out;
  let p = opos;
  b[p++] = 0x22;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      if (JSON_ESC[c] === 0) b[p++] = c;
      else p = jWriteEscape(b, p, c);
    } else if (c < 0x800) {
      b[p++] = 0xc0 | (c >> 6);
      b[p++] = 0x80 | (c & 0x3f);
    } else if (c < 0xd800 || c > 0xdfff) {
      b[p++] = 0xe0 | (c >> 12);
      b[p++] = 0x80 | ((c >> 6) & 0x3f);
      b[p++] = 0x80 | (c & 0x3f);
    } else {
      const d = i + 1 < len ? s.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) {
        p = jWriteUnitEscape(b, p, c);
        continue;
      }
      i++;
      c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
      b[p++] = 0xf0 | (c >> 18);
      b[p++] = 0x80 | ((c >> 12) & 0x3f);
      b[p++] = 0x80 | ((c >> 6) & 0x3f);
      b[p++] = 0x80 | (c & 0x3f);
    }
  }
  b[p++] = 0x22;
  opos = p;
}

// Below JSON_SCAN_MIN characters, one pass character by character; longer, utf8Write and the addon's scan.
function jString(s) {
  const len = s.length;
  if (len < JSON_SCAN_MIN) jQuoteChars(s, len);
  else jLongString(s, len);
}

// A longer string: utf8Write, then its bytes are checked for characters to escape (well-formed text has no
// other: every byte of a multi-byte character is 0x80 or above), which are escaped in place.
function jLongString(s, len) {
  if (relayCount !== 0 && len >= ZERO_COPY_MIN && W.externalMin !== Infinity && jRelayed(s, len)) return;
  if (!s.isWellFormed()) {
    jQuoteChars(s, len);
    return;
  }
  let cap = len <= 8192 ? len * 3 : len + (len >>> 3) + 8;
  if (opos + cap + 2 > out.length) grow(cap + 2);
  const h = opos;
  let n = out.utf8Write(s, h + 1, cap);
  if (n > cap - 4 && cap < len * 3) {
    cap = Buffer.byteLength(s, 'utf8');
    if (h + cap + 2 > out.length) grow(cap + 2);
    n = out.utf8Write(s, h + 1, cap);
  }
  out[h] = 0x22;
  let end = h + 1 + n;
  const q = jsonPlainEnd(out, h + 1, end);
  if (q !== end) {
    if (jsonNative === undefined) {
      // Without the addon (the codec on its own): written again character by character, escapes and all.
      opos = h;
      jQuoteChars(s, len);
      return;
    }
    end = jEscapeNative(q, end);
  }
  out[end] = 0x22;
  opos = end + 1;
}

// Escapes the bytes [q, end) of the output where they are, in the addon; returns the new end. (In JS, two
// passes over 16 MiB of text with line breaks took 49.6 ms, more than JSON.stringify's 38.2.)
function jEscapeNative(q, end) {
  const extra = jsonNative.jsonEscapeCount(out, q, end);
  if (end + extra + 1 > out.length) {
    opos = end;                        // grow() keeps the bytes before opos
    grow(extra + 1);
  }
  jsonNative.jsonEscapeInPlace(out, q, end, extra);
  return end + extra;
}

// JSON text of a number: ToString(n) when finite, else null. -0 is "0", as ToString makes it.
function jNumber(n) {
  if (opos + 25 > out.length) grow(25);
  if ((n | 0) === n) {
    let p = opos;
    if (n < 0) {
      out[p++] = 0x2d;
      n = -n;
    }
    if (n < 10) {
      out[p] = 48 + n;
      opos = p + 1;
    } else if (n < 100) {
      const d = (n / 10) | 0;
      out[p] = 48 + d;
      out[p + 1] = 48 + n - d * 10;
      opos = p + 2;
    } else {
      jUint32Digits(p, n >>> 0);
    }
  } else if (n - n === 0) {
    jFinite(n);
  } else {
    jAscii('null');
  }
}

// Writes the digits of the integer 1 <= n < 2^32 at p. Its length is found by comparisons and its digits by 32-bit
// division, which V8 compiles to a multiplication: floating-point divisions (Math.floor(n / 10)) were a fifth of
// encoding the small message with a six-digit number in it.
function jUint32Digits(p, n) {
  const count = n < 1e5 ? (n < 100 ? (n < 10 ? 1 : 2) : n < 1e3 ? 3 : n < 1e4 ? 4 : 5)
    : n < 1e7 ? (n < 1e6 ? 6 : 7) : n < 1e8 ? 8 : n < 1e9 ? 9 : 10;
  jDigitsBefore(p + count, n, count);
}

// Writes the last `count` digits of the integer 0 <= n < 2^32 (zeros where it has fewer) so that they end at e.
function jDigitsBefore(e, n, count) {
  const b = out;
  opos = e;
  for (let i = 0; i < count; i++) {
    const d = (n / 10) >>> 0;
    b[--e] = 48 + n - d * 10;
    n = d;
  }
}

// Writes the digits of the integer 0 < n < 2^53 at p: above 2^32 (a millisecond timestamp, say) as the digits of
// n / 10^8 and then eight more, both in 32-bit arithmetic.
function jDigits(p, n) {
  if (n < 4294967296) {
    jUint32Digits(p, n >>> 0);
    return;
  }
  const high = Math.floor(n / 1e8);
  jUint32Digits(p, high >>> 0);
  jDigitsBefore(opos + 8, (n - high * 1e8) >>> 0, 8);
}

const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

// A finite number that is not an int32. Number::toString gives the fewest digits that read back as n: for a
// number of 1e-6 to 1e15 with at most 15 significant digits, that is the first k for which round(n * 10^k) / 10^k
// is n (a smaller k would have been found first; two candidates 10^-k apart cannot both read back as n when
// they have 15 digits or fewer, as a double holds ~15.95). Anything else goes through '' + n.
function jFinite(n) {
  let p = opos;
  let a = n;
  if (a < 0) a = -a;
  if (a >= 1e-6 && a < 1e15) {
    if (a === Math.floor(a)) {
      if (n < 0) out[p++] = 0x2d;
      jDigits(p, a);
      return;
    }
    for (let k = 1; k < 16; k++) {
      const scale = POW10[k];
      const m = Math.round(a * scale);
      if (m >= 1e15) break;
      if (m / scale !== a) continue;
      if (n < 0) out[p++] = 0x2d;
      const whole = Math.floor(m / scale);
      let frac = m - whole * scale;
      if (whole === 0) out[p++] = 0x30;
      else { jDigits(p, whole); p = opos; }
      out[p++] = 0x2e;
      for (let i = p + k - 1; i >= p; i--) {
        const d = Math.floor(frac / 10);
        out[i] = 48 + frac - d * 10;
        frac = d;
      }
      opos = p + k;
      return;
    }
  }
  jAscii('' + n);
}

// Writes an ASCII string (room made by the caller for up to 25 bytes, or here).
function jAscii(s) {
  const len = s.length;
  if (opos + len > out.length) grow(len);
  const b = out;
  const p = opos;
  for (let i = 0; i < len; i++) b[p + i] = s.charCodeAt(i);
  opos = p + len;
}

function keyString(key) {
  return typeof key === 'number' ? '' + key : key;
}

// SerializeJSONProperty for the value `v` of property `key` (a string, or an array index as a number): false
// when it has no JSON text (undefined, a function, a symbol), and nothing was written.
function jValue(v, key) {
  if (typeof v === 'string') {
    jString(v);
    return true;
  }
  if (typeof v === 'number') {
    jNumber(v);
    return true;
  }
  if (typeof v === 'object') {
    if (v === null) {
      jAscii('null');
      return true;
    }
    const toJSON = v.toJSON;
    if (typeof toJSON === 'function') {
      if (toJSON === bufferToJSON && typedArrayTag.call(v) === 'Uint8Array' && !hasOwnProperty.call(v, 'length')) {
        jBufferJson(v);
        return true;
      }
      return jResolved(toJSON.call(v, keyString(key)));
    }
    return jObject(v);
  }
  if (typeof v === 'boolean') {
    jAscii(v ? 'true' : 'false');
    return true;
  }
  if (typeof v === 'bigint' || typeof v === 'function') {
    const toJSON = v.toJSON;
    if (typeof toJSON === 'function') return jResolved(toJSON.call(v, keyString(key)));
  }
  return jResolved(v);
}

// What Node's own Buffer.prototype.toJSON gives, {type: 'Buffer', data: [...the bytes]}, as JSON text written
// from the bytes: the same text without building an array of the bytes and reading it back (16 MiB: ~110 ms
// for toJSON alone). That toJSON reads the length and the bytes; where it is called, a Uint8Array with an own
// 'length' is left to it.
const bufferToJSON = Buffer.prototype.toJSON;
// The decimal text of each byte value and a comma: 4 bytes a value, the count in byteTextLen. Made on first
// use, not in every child's start-up.
var byteText;
var byteTextLen;

function makeByteText() {
  byteText = new Uint8Array(256 * 4);
  byteTextLen = new Uint8Array(256);
  for (let b = 0; b < 256; b++) {
    const text = `${b},`;
    for (let i = 0; i < text.length; i++) byteText[b * 4 + i] = text.charCodeAt(i);
    byteTextLen[b] = text.length;
  }
}

function jBufferJson(v) {
  if (byteText === undefined) makeByteText();
  const BYTE_TEXT = byteText;
  const BYTE_TEXT_LEN = byteTextLen;
  const n = v.length;
  jAscii('{"type":"Buffer","data":[');
  if (opos + n * 4 + 2 > out.length) grow(n * 4 + 2);
  const b = out;
  let p = opos;
  for (let i = 0; i < n; i++) {
    const c = v[i];
    const x = c * 4;
    const len = BYTE_TEXT_LEN[c];
    b[p] = BYTE_TEXT[x];
    b[p + 1] = BYTE_TEXT[x + 1];
    b[p + 2] = BYTE_TEXT[x + 2];
    b[p + 3] = BYTE_TEXT[x + 3];
    p += len;
  }
  if (n !== 0) p--;                      // the last comma
  b[p] = 0x5d;
  b[p + 1] = 0x7d;
  opos = p + 2;
}

// The steps of SerializeJSONProperty after toJSON.
function jResolved(v) {
  switch (typeof v) {
    case 'string': jString(v); return true;
    case 'number': jNumber(v); return true;
    case 'boolean': jAscii(v ? 'true' : 'false'); return true;
    case 'object': if (v === null) { jAscii('null'); return true; } return jObject(v);
    case 'bigint':
      throw new PathError('is a BigInt, which JSON cannot hold (JSON.stringify: "Do not know how to serialize a ' +
        'BigInt"); serialization: \'advanced\' carries it');
    default: return false;
  }
}

// An object, after toJSON: a Number, String, Boolean or BigInt object as its primitive (ToNumber and ToString
// as JSON.stringify calls them), an array (or a Proxy of one) as an array, anything else by its own
// enumerable string keys. Array.isArray and isBoxedPrimitive run no trap of a Proxy; getPrototypeOf would.
function jObject(v) {
  if (isArray(v)) return jArray(v);
  if (isBoxedPrimitive(v)) {
    if (isNumberObject(v)) jNumber(Number(v));
    else if (isStringObject(v)) jString(String(v));
    else if (isBooleanObject(v)) jAscii(booleanValueOf.call(v) ? 'true' : 'false');
    else jResolved(bigintValueOf.call(v));
    return true;
  }
  return jProps(v);
}

function jEnter(v) {
  for (let i = 0; i < jDepth; i++) {
    if (jStack[i] === v) {
      throw new PathError('refers back to an object that contains it: JSON cannot hold a circular structure ' +
        '(JSON.stringify: "Converting circular structure to JSON")');
    }
  }
  jStack[jDepth++] = v;
}

function jLeave() {
  jStack[--jDepth] = undefined;
}

// Like addSeg, but a stack overflow stays what it is: encodeJson() then leaves the value to JSON.stringify.
function jAddSeg(e, kind, s) {
  if (e instanceof PathError) e.segs.push(kind, s);
  return e;
}

function jProps(v) {
  jEnter(v);
  const keys = objectKeys(v);
  if (opos + 1 > out.length) grow(1);
  out[opos++] = 0x7b;
  let written = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const mark = opos;
    if (written !== 0) {
      if (opos + 1 > out.length) grow(1);
      out[opos++] = 0x2c;
    }
    if (i < KEY_SLOTS && jKeys[i] === k) copyCached(JSON_KEY_SLOT + i);
    else jKey(k, i);
    let wrote = true;
    try {
      // One load per position for the first four: each has an inline cache of its own, which sees the few keys
      // messages put at that position, where a single load sees every key of every shape and goes megamorphic
      // (a quarter of encoding the small message, as readMap's stores would be).
      const x = i === 0 ? v[k] : i === 1 ? v[k] : i === 2 ? v[k] : i === 3 ? v[k] : v[k];
      if (typeof x === 'string' && i < KEY_SLOTS) jValueString(x, i);
      else wrote = jValue(x, k);
    } catch (e) {
      throw jAddSeg(e, SEG_KEY, k);
    }
    if (wrote) written++;
    else opos = mark;
  }
  if (opos + 1 > out.length) grow(1);
  out[opos++] = 0x7d;
  jLeave();
  return true;
}

// `"key":` by the key's position in its object, and string values by theirs, as the advanced encoder keeps them
// (see KEY_SLOTS and encValueString, whose rules the values follow: kept once they came twice in a row, given
// up after VALUE_TRIES misses, forgotten when the running code ends): a hit is a comparison and a copy of a
// few words (copyCached, from the slots after the advanced encoder's) instead of the string character by
// character. An empty slot holds the empty string with its bytes, which a hit on '' writes rightly.
const jKeys = new Array(KEY_SLOTS).fill('');
const jValues = new Array(KEY_SLOTS).fill('');
const jValueSeen = new Array(KEY_SLOTS).fill('');
const jValueMisses = new Uint8Array(KEY_SLOTS);

function jEmptySlot(slot) {
  const base = slot * KEY_WORDS * 4;
  encCacheBytes[base] = 0x22;
  encCacheBytes[base + 1] = 0x22;
  if (slot < JSON_VALUE_SLOT) encCacheBytes[base + 2] = 0x3a;
  encCacheLen[slot] = slot < JSON_VALUE_SLOT ? 3 : 2;
}
for (let slot = JSON_KEY_SLOT; slot < CACHE_SLOTS; slot++) jEmptySlot(slot);

// Keeps the bytes from h to opos in the slot when they fit; whether they did.
function jKeep(slot, h) {
  const n = opos - h;
  if (n > KEY_WORDS * 4) return false;
  const base = slot * KEY_WORDS * 4;
  for (let i = 0; i < n; i++) encCacheBytes[base + i] = out[h + i];
  encCacheLen[slot] = n;
  return true;
}

// `"key":` for the key at position j, kept for the next object when j < KEY_SLOTS.
function jKey(k, j) {
  const h = opos;
  jString(k);
  if (opos + 1 > out.length) grow(1);
  out[opos++] = 0x3a;
  if (j < KEY_SLOTS && jKeep(JSON_KEY_SLOT + j, h)) jKeys[j] = k;
}

// A string value at position j < KEY_SLOTS.
function jValueString(s, j) {
  const misses = jValueMisses[j];
  if (misses < VALUE_TRIES) {
    if (jValues[j] === s) {
      jValueMisses[j] = 0;
      copyCached(JSON_VALUE_SLOT + j);
      return;
    }
    jValueMisses[j] = misses + 1;
    if (s.length <= MAX_CACHED_CHARS) {
      keepUntilTurnEnds();
      if (jValueSeen[j] === s) {
        const h = opos;
        jString(s);
        if (jKeep(JSON_VALUE_SLOT + j, h)) jValues[j] = s;
        return;
      }
      jValueSeen[j] = s;
    }
  }
  jString(s);
}

function jForgetValues() {
  for (let j = 0; j < KEY_SLOTS; j++) {
    jEmptySlot(JSON_VALUE_SLOT + j);
    jValues[j] = '';
    jValueSeen[j] = '';
    jValueMisses[j] = 0;
  }
}

// LengthOfArrayLike for a Proxy of an array, whose 'length' trap may return anything.
function toLength(x) {
  const n = Math.trunc(Number(x));
  return n > 0 ? Math.min(n, Number.MAX_SAFE_INTEGER) : 0;
}

function jArray(v) {
  jEnter(v);
  let len = v.length;
  if ((len >>> 0) !== len) len = toLength(len);
  if (opos + 1 > out.length) grow(1);
  out[opos++] = 0x5b;
  for (let i = 0; i < len; i++) {
    if (i !== 0) {
      if (opos + 1 > out.length) grow(1);
      out[opos++] = 0x2c;
    }
    const x = v[i];
    if (typeof x === 'number') {
      // Integers 0 to 999 (counts, a Buffer's bytes) here, -0 among them as "0"; any other in jNumber.
      if ((x >>> 0) === x && x < 1000) {
        if (opos + 3 > out.length) grow(3);
        const p = opos;
        if (x < 10) {
          out[p] = 48 + x;
          opos = p + 1;
        } else if (x < 100) {
          const t = (x / 10) | 0;
          out[p] = 48 + t;
          out[p + 1] = 48 + x - t * 10;
          opos = p + 2;
        } else {
          const h = (x / 100) | 0;
          const r = x - h * 100;
          const t = (r / 10) | 0;
          out[p] = 48 + h;
          out[p + 1] = 48 + t;
          out[p + 2] = 48 + r - t * 10;
          opos = p + 3;
        }
      } else {
        jNumber(x);
      }
      continue;
    }
    let wrote;
    try {
      wrote = jValue(x, i);
    } catch (e) {
      throw jAddSeg(e, SEG_INDEX, i);
    }
    if (!wrote) jAscii('null');
  }
  if (opos + 1 > out.length) grow(1);
  out[opos++] = 0x5d;
  jLeave();
  return true;
}

function jStackClear() {
  for (let i = 0; i < jDepth; i++) jStack[i] = undefined;
  jDepth = 0;
}

function encodeJson(writer, value) {
  if (encBusy) {
    encodeJsonNested(writer, value);
    return;
  }
  encBusy = true;
  W = writer;
  out = writer.buf;
  opos = writer.pos;
  const start = opos;
  try {
    if (!jValue(value, '')) throw notJson(value);
    writer.pos = opos;
  } catch (e) {
    jStackClear();
    if (!isStackOverflow(e)) throw publicJsonError(e);
    // Nested deeper than this recursion reaches: V8's JSON.stringify goes deeper (running toJSON and getters
    // again, which only a value thousands of levels deep meets). The encoder is idle meanwhile, so a toJSON
    // that sends on another channel encodes as any other send.
    writer.pos = start;
    encodeDone();
    jsonTextInto(writer, value);
  } finally {
    jStackClear();
    encodeDone();
  }
}

// encodeJson() called from user code (a toJSON, a getter) while encoding.
function encodeJsonNested(writer, value) {
  if (writer === W) {
    throw unserializable('encodeJson() was called re-entrantly on the Writer that is being written');
  }
  const sW = W, sPos = opos, sStack = jStack, sDepth = jDepth;
  sW.pos = sPos;
  W = writer; out = writer.buf; opos = writer.pos;
  jStack = []; jDepth = 0;
  try {
    if (!jValue(value, '')) throw notJson(value);
    writer.pos = opos;
  } catch (e) {
    throw publicJsonError(e);
  } finally {
    W = sW; out = sW.buf; opos = sPos;
    jStack = sStack; jDepth = sDepth;
  }
}

function notJson(value) {
  const what = typeof value === 'function' ? 'a function' : typeof value === 'symbol' ? 'a symbol' : 'undefined';
  return unserializable(`message cannot be serialized as JSON: it is ${what}`);
}

function publicJsonError(e) {
  if (e instanceof PathError || isStackOverflow(e)) return publicEncodeError(e);
  if (e !== null && typeof e === 'object' && e.code === undefined) {
    try { e.code = 'ERR_IPC_UNSERIALIZABLE'; } catch { /* frozen */ }
  }
  return e;
}

// The fallback for a value nested too deeply for jValue's recursion: JSON.stringify's text, encoded.
function jsonTextInto(writer, value) {
  let s;
  try {
    s = jsonStringify(value);
  } catch (e) {
    throw publicJsonError(e);
  }
  if (s === undefined) throw notJson(value);
  const cap = Buffer.byteLength(s, 'utf8');
  writer.ensure(cap);
  writer.pos += writer.buf.utf8Write(s, writer.pos, cap);
}

// A long string received in this turn as a JSON string without escapes (jStr had decodeLongString remember it
// with its quotes): its JSON text, quotes included, is sent on from the frame. When it ends the message (an echo of a
// string), the channel lends those bytes to Rust, as in advanced mode, instead of copying what the kernel does
// not take at once: a fresh child's copy of 16 MiB was most of what a json echo took longer (58.7 against
// 38.9 ms, medians of 8 fresh children each).
function jRelayed(s, len) {
  const bytes = relayBytes(s, len, RELAY_QUOTED);
  if (bytes === undefined) return false;
  addExternal(bytes);
  W.lendable = bytes;
  return true;
}

// ---------------------------------------------------------------------------
// JSON: decoder
//
// A parser over the UTF-8 bytes that builds what JSON.parse builds from their text (own data properties in
// text order, a later duplicate key replacing the value in place, "__proto__" an own property, -0 from "-0",
// numbers rounded as JSON.parse rounds them (see jNum), strings with escapes and lone surrogates as written).
// Anything it does not take, a syntax error, bytes that are not UTF-8 or nesting deeper than its recursion,
// goes the text route instead: the bytes decoded to a string and JSON.parse, which gives the value or the exact
// error. It skips decoding the whole text to a string, which JSON.parse then reads again: 460 ns for the small
// message before, 130-170 now; a 16 MiB string 15 ms, now 2.9 (a copy; in the channel, a long ASCII string is
// a view of the frame, see decodeLongString).

var jb = EMPTY;
var jp = 0;
var je = 0;
var jDecoding = false;
const J_FAIL = {};                      // thrown inside the parser: take the text route

function jSkip(p) {
  while (p < je) {
    const c = jb[p];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    p++;
  }
  return p;
}

function jRead() {
  let p = jp;
  if (p < je && jb[p] <= 0x20) p = jSkip(p);
  if (p >= je) throw J_FAIL;
  const c = jb[p];
  switch (c) {
    case 0x22: jp = p + 1; return jStr(false);
    case 0x7b: jp = p + 1; return jObj();
    case 0x5b: jp = p + 1; return jArr();
    case 0x74:
      if (p + 4 <= je && jb[p + 1] === 0x72 && jb[p + 2] === 0x75 && jb[p + 3] === 0x65) { jp = p + 4; return true; }
      throw J_FAIL;
    case 0x66:
      if (p + 5 <= je && jb[p + 1] === 0x61 && jb[p + 2] === 0x6c && jb[p + 3] === 0x73 && jb[p + 4] === 0x65) {
        jp = p + 5;
        return false;
      }
      throw J_FAIL;
    case 0x6e:
      if (p + 4 <= je && jb[p + 1] === 0x75 && jb[p + 2] === 0x6c && jb[p + 3] === 0x6c) { jp = p + 4; return null; }
      throw J_FAIL;
  }
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
    jp = p;
    return jNum();
  }
  throw J_FAIL;
}

// A string from jp (after its opening quote) to its closing quote.
function jStr(isKey) {
  const b = jb;
  const s0 = jp;
  let p = s0;
  const fastEnd = je - s0 > 64 ? s0 + 64 : je;
  for (; p < fastEnd; p++) {
    const c = b[p];
    if (c === 0x22 || c === 0x5c || c < 0x20) break;
  }
  if (p === fastEnd) p = jsonPlainEnd(b, p, je);
  if (p >= je) throw J_FAIL;
  const c = b[p];
  if (c === 0x22) {
    jp = p + 1;
    const n = p - s0;
    if (n <= SHORT_DECODE) return decodeShortString(b, s0, n, isKey);
    return decodeLongString(b, s0, n, true);
  }
  if (c !== 0x5c) throw J_FAIL;         // a control character
  return jStrEscaped(s0, p);
}

// A string with escapes: s0 its first byte, p its first backslash. Its text, quotes included, goes to JSON.parse,
// whose native unescaping is what this parser would do, faster: a 16 MiB text of log lines took 91 ms decoded
// piece by piece, against 15.8 for JSON.parse. An escape JSON.parse refuses makes this throw, and decodeJson()
// then takes the text route, which gives JSON.parse's own message.
function jStrEscaped(s0, p) {
  const b = jb;
  let q;
  if (je - p >= JSON_SCAN_MIN && jsonNative !== undefined) {
    q = jsonNative.jsonStringEnd(b, p, je);
  } else {
    for (q = p; q < je; q++) {
      const c = b[q];
      if (c === 0x5c) q++;
      else if (c === 0x22 || c < 0x20) break;
    }
  }
  if (q >= je || b[q] !== 0x22) throw J_FAIL;
  jp = q + 1;
  return jsonParse(decodeLongString(b, s0 - 1, q + 2 - s0));
}

// A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?. With 15 digits or fewer and a power of ten up to
// 22 either way, the digits as an integer times or divided by that power (both exact doubles) is one correctly
// rounded operation, so exactly what JSON.parse reads; any other number is Number() of its text.
function jNum() {
  const b = jb;
  const s0 = jp;
  let p = s0;
  const neg = b[p] === 0x2d;
  if (neg) p++;
  if (p >= je) throw J_FAIL;
  let c = b[p];
  let v = 0;
  if (c === 0x30) {
    p++;
  } else if (c >= 0x31 && c <= 0x39) {
    v = c - 0x30;
    p++;
    while (p < je && (c = b[p]) >= 0x30 && c <= 0x39) {
      v = v * 10 + (c - 0x30);
      p++;
    }
  } else {
    throw J_FAIL;
  }
  let digits = p - s0 - (neg ? 1 : 0);
  let scale = 0;
  if (p < je && (c = b[p]) === 0x2e) {
    p++;
    const d = p;
    while (p < je && (c = b[p]) >= 0x30 && c <= 0x39) {
      v = v * 10 + (c - 0x30);
      p++;
    }
    if (p === d) throw J_FAIL;
    scale = p - d;
    digits += scale;
  }
  if (p < je && (c === 0x65 || c === 0x45)) {
    p++;
    let eneg = false;
    if (p < je && ((c = b[p]) === 0x2b || c === 0x2d)) {
      eneg = c === 0x2d;
      p++;
    }
    const d = p;
    let x = 0;
    while (p < je && (c = b[p]) >= 0x30 && c <= 0x39) {
      if (x < 1000) x = x * 10 + (c - 0x30);
      p++;
    }
    if (p === d) throw J_FAIL;
    scale -= eneg ? -x : x;
  }
  jp = p;
  if (digits > 15 || scale > 22 || scale < -22) return Number(b.latin1Slice(s0, p));
  if (scale > 0) v /= POW10_22[scale];
  else if (scale < 0) v *= POW10_22[-scale];
  return neg ? -v : v;
}

const POW10_22 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
  1e18, 1e19, 1e20, 1e21, 1e22];

// `"key":` from jp; returns the key.
function jMemberKey() {
  let p = jp;
  if (p < je && jb[p] !== 0x22) p = jSkip(p);
  if (p >= je || jb[p] !== 0x22) throw J_FAIL;
  jp = p + 1;
  const k = jStr(true);
  p = jp;
  if (p < je && jb[p] !== 0x3a) p = jSkip(p);
  if (p >= je || jb[p] !== 0x3a) throw J_FAIL;
  jp = p + 1;
  return k;
}

// After a member or element: true when a ',' follows, false at `close` (both consumed).
function jMore(close) {
  let p = jp;
  if (p < je && jb[p] <= 0x20) p = jSkip(p);
  if (p < je) {
    const c = jb[p];
    jp = p + 1;
    if (c === 0x2c) return true;
    if (c === close) return false;
  }
  throw J_FAIL;
}

// Whether the container opened before jp is empty (its `close` then consumed).
function jEmpty(close) {
  let p = jp;
  if (p < je && jb[p] <= 0x20) p = jSkip(p);
  if (p < je && jb[p] === close) {
    jp = p + 1;
    return true;
  }
  return false;
}

// The first members are stored by statements of their own, for the reason readMap gives.
function jObj() {
  const obj = {};
  if (jEmpty(0x7d)) return obj;
  let k, v;
  k = jMemberKey();
  v = jRead();
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  if (!jMore(0x7d)) return obj;
  k = jMemberKey();
  v = jRead();
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  if (!jMore(0x7d)) return obj;
  k = jMemberKey();
  v = jRead();
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  if (!jMore(0x7d)) return obj;
  k = jMemberKey();
  v = jRead();
  if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  while (jMore(0x7d)) {
    k = jMemberKey();
    v = jRead();
    if (k === '__proto__') defineOwn(obj, k, v); else obj[k] = v;
  }
  return obj;
}

// Elements that are non-negative integers of up to 15 digits followed at once by ',' or ']' (an array of
// counts, the bytes of a Buffer's toJSON) are read here; anything else from its start by jRead.
function jArr() {
  const arr = [];
  if (jEmpty(0x5d)) return arr;
  const b = jb;
  for (;;) {
    const start = jp;
    let p = start;
    let c = b[p];
    if (p < je && c >= 0x30 && c <= 0x39) {
      let v = c - 0x30;
      p++;
      if (v !== 0) {
        while (p < je && (c = b[p]) >= 0x30 && c <= 0x39 && p - start < 15) {
          v = v * 10 + (c - 0x30);
          p++;
        }
      }
      if (p < je) {
        c = b[p];
        if (c === 0x2c) {
          arr.push(v);
          jp = p + 1;
          continue;
        }
        if (c === 0x5d) {
          arr.push(v);
          jp = p + 1;
          return arr;
        }
      }
    }
    arr.push(jRead());
    if (!jMore(0x5d)) return arr;
  }
}

function decodeJson(buf, start, end) {
  buf = toBuffer(buf);
  checkRange(buf, start, end);
  if (jDecoding) return decodeJsonText(buf, start, end);
  jDecoding = true;
  jb = buf; jp = start; je = end;
  let v;
  try {
    v = jRead();
    if (jp < je) jp = jSkip(jp);
    if (jp !== je) v = J_FAIL;
  } catch {
    v = J_FAIL;
  } finally {
    jDecoding = false;
    jb = EMPTY;
    releaseLargeSource();
  }
  return v === J_FAIL ? decodeJsonText(buf, start, end) : v;
}

// The text route: the bytes as a string (checked UTF-8), then JSON.parse.
function decodeJsonText(buf, start, end) {
  const n = end - start;
  let text;
  if (n <= SHORT_DECODE) {
    text = decodeShortString(buf, start, n, false);
    releaseLargeSource();
  } else {
    text = decodeLongString(buf, start, n);
  }
  try {
    return jsonParse(text);
  } catch (e) {
    throw badPayload(`bad JSON: ${e.message}`);
  }
}


module.exports = {
  offerLargeBuffer,
  useSource,
  beginRun,
  runValue,
  endRun,
  Writer,
  useExternalStrings,
  useShared,
  useFds,
  takeSharedTaken,
  encodeAdvanced,
  decodeAdvanced,
  encodeJson,
  decodeJson,
  useJsonNative,
  EXT,
  ZERO_COPY_MIN,
};
