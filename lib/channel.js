'use strict';

// The JS half of one channel end: turns values into frames (through the codec), settles sends once Rust
// reports their bytes handed to the kernel, and hands incoming messages to the receivers of execa's API.
// Rust owns the socket, framing checks, the write queue and event-loop liveness; this file only decides
// *when* JS wants the loop kept alive (`updateRef`).

// The addon as lib/load.js found it: loading lib/native.js, which would ask load.js for it anyway, was one module
// more in every child's start.
const addon = require('./load.js').binding();
const {openChannel, closeFd, externalString, hasExternalStrings, adviseHugePages, mapShared} = addon;
// handles.js is loaded when a message first brings a handle: most processes never see one, and every module
// loaded at start is part of every child's start.
const handles = () => require('./handles.js');
const codec = require('./codec.js');
const errors = require('./errors.js');

// Long received strings become views over the received bytes where Node allows it (see src/strings.rs).
if (hasExternalStrings()) {
  codec.useExternalStrings(externalString);
}
// Long strings of JSON messages are scanned and escaped in Rust.
codec.useJsonNative(addon);
// Values of 8 MiB or more travel through shared memory where the peer takes it (see src/shared.rs).
codec.useShared(mapShared, closeFd);

const HEADER = 5;
const KIND_MESSAGE = 2;
const KIND_STRICT = 3;
const KIND_ACK = 4;
const KIND_CANCEL = 5;
const KIND_HANDLE = 6;
const KIND_TAKEN = 7;
// Bytes of shared values that may wait for the peer to take them before a send's promise waits for it too.
const SHARED_WINDOW = 32 * 1024 * 1024;
// A strict message starts with its id (u32) and whether its sender is listening (u8).
const STRICT_PREFIX = 5;
// Sends are coalesced until this many bytes wait (or the current microtask queue ends).
const FLUSH_BYTES = 64 * 1024;
// ... less this much, so that a burst of small messages never fills the writer's buffer (FLUSH_BYTES long)
// in the middle of one: the encoder's grow path is then not taken, and V8 does not throw away a fresh
// process's optimized encoder to take it.
const FLUSH_SLACK = 256;
// A flushed batch at least this large is handed to Rust with its buffer (see flush()).
const LEND_BYTES = 1024 * 1024;
// Small batches of received frames arrive in this buffer, reused for every batch: no allocation and no new
// Buffer per wake-up. One read (64 KiB) plus the tail of a frame begun in the read before: with exactly 64 KiB,
// 33 of 112 batches of 200k small messages came as Buffers of their own, and the decoder optimized on the
// landing buffer alone was thrown away (useSource() met another buffer) and compiled again; with room for the
// tail a fresh child took 200k small messages 1.009-1.051x as fast (four alternating runs of 20). The codec's
// zero-copy size, which is set to this: the decoder copies every smaller binary and string, so no decoded value is
// a view into the buffer that the next batch overwrites.
const LANDING_BYTES = codec.ZERO_COPY_MIN;
// The coalescing buffer is kept for reuse up to this size (fresh memory costs page faults on every
// large message); a larger one is dropped once flushed.
const KEEP_WRITER_BYTES = 32 * 1024 * 1024;

const DEFAULT_MAX_MESSAGE_SIZE = 512 * 1024 * 1024;
// Bytes sent but not yet taken by the kernel past which new sends are refused (ERR_IPC_QUEUE_FULL).
// A message always fits an empty queue, whatever its size.
const MAX_QUEUED_BYTES = 128 * 1024 * 1024;

// After a write, how long (in microseconds) the loop stays awake for the answer before it sleeps (see
// src/spin.rs). Set by this environment variable, which children inherit: 0 turns waiting awake off.
const SPIN_ENV = 'NATIVE_IPC_SPIN_US';
const DEFAULT_SPIN_US = 50;
const MAX_SPIN_US = 1000;
let spinWindow;

/** The waiting window every channel of this process uses, read once; a bad value is warned about, not fatal. */
function spinMicroseconds() {
  if (spinWindow === undefined) {
    const text = process.env[SPIN_ENV];
    spinWindow = DEFAULT_SPIN_US;
    if (text !== undefined) {
      if (/^\d{1,4}$/.test(text.trim()) && Number(text) <= MAX_SPIN_US) {
        spinWindow = Number(text);
      } else {
        process.emitWarning(
          `${SPIN_ENV}=${JSON.stringify(text)} is not a whole number of microseconds from 0 to ${MAX_SPIN_US} (0 turns waiting awake for answers off); using ${DEFAULT_SPIN_US}.`,
          {code: 'NATIVE_IPC_BAD_SPIN_US'},
        );
      }
    }
  }
  return spinWindow;
}

const noop = () => {};
// Hot paths queue their microtasks as reactions to this promise: Node's queueMicrotask() wraps every callback in
// an AsyncResource and a bound function (~600 more instructions per call, measured with callgrind).
const settled = Promise.resolve();

/** The payload length in the header of the frame at `p` (u32 little-endian). */
const frameLength = (frames, p) => (frames[p] | (frames[p + 1] << 8) | (frames[p + 2] << 16)) + frames[p + 3] * 0x1000000;
const returnFalse = () => false;

// One executor for every send promise, so that a send allocates no closure. (`var`: read without the
// uninitialized-value check a module-level `let` costs on every access; see codec.js.)
var nextResolve;
var nextReject;
const captureExecutor = (resolve, reject) => {
  nextResolve = resolve;
  nextReject = reject;
};

/**
 * The promise the sends of one flush share (`end` 0 until a send joins it; a handle's send has one of its own).
 * Made when the batch before it is handed over, not by the first send of the next: anything a send did only once
 * a flush (constructing the promise, even reading a spare one) was too rare for V8 to have recorded when it
 * optimized send(), and met there it threw a fresh sender's optimized send path away.
 */
function newBatch() {
  const promise = new Promise(captureExecutor);
  return {promise, resolve: nextResolve, reject: nextReject, end: 0};
}

class Channel {
  /**
   * @param {number} fd
   * @param {{serialization: 'advanced' | 'json', maxMessageSize: number, isParent: boolean}} options
   */
  constructor(fd, {serialization, maxMessageSize, isParent}) {
    this.isParent = isParent;
    this.prefix = isParent ? 'subprocess.' : '';
    this.other = isParent ? 'subprocess' : 'parent process';
    this.serialization = serialization;
    this.encodeValue = serialization === 'json' ? codec.encodeJson : codec.encodeAdvanced;
    this.decodeValue = serialization === 'json' ? codec.decodeJson : codec.decodeAdvanced;
    this.advanced = serialization !== 'json';
    this.maxMessageSize = maxMessageSize;
    this.writer = new codec.Writer();
    this.writer.onLargeBuffer = adviseHugePages;
    // Asked only for values large enough to share (see shareCopy in codec.js), never per small message.
    this.writer.peerHolds = () => this.sharedSent !== this.sharedTaken;
    // Whether the peer takes one-byte strings (LATIN1): asked of Rust, only for strings of 32 code units or more
    // that are not ASCII, until the peer's handshake has arrived (undefined until then).
    this.peerLatin1 = undefined;
    this.writer.peerLatin1 = () => {
      if (this.peerLatin1 === undefined && this.native !== undefined) {
        const takes = this.native.peerTakesLatin1;
        if (typeof takes === 'boolean') {
          this.peerLatin1 = takes;
        }
      }
      return this.peerLatin1 === true;
    };
    // Large binaries go to the kernel straight from the sender's memory (see flush()).
    this.writer.externalMin = FLUSH_BYTES;
    // A large writer buffer lent to Rust (flush()), to be taken back once written.
    this.spareBuffer = undefined;

    // Sending. `streamEnd` counts the bytes of every frame produced; each unsettled send waits for the
    // kernel to have taken the bytes up to its own end offset.
    this.streamEnd = 0;
    this.written = 0;
    this.batch = newBatch();
    this.batches = [];
    this.batchHead = 0;
    this.flushScheduled = false;
    this.flushBound = () => this.flush();
    // No send was written at once since the microtask queue last ran (see scheduleFlush).
    this.quiet = true;
    this.quietBound = () => {
      this.quiet = true;
    };
    this.drainBound = () => this.drain();
    this.nextStrictId = 1;
    this.strictWaits = new Map();
    // Shared-memory values (src/shared.rs): how many were sent, and their bytes, and how many the peer said it
    // took (TAKEN frames), and their bytes. The bytes not taken yet count as waiting for the peer, as queued bytes
    // do. `sharedSends` are the sends with such values not taken yet, in order ({upTo, endBytes, resolve}, resolve
    // set while the send waits for the peer to take enough of them: see SHARED_WINDOW).
    this.sharedSent = 0;
    this.sharedSentBytes = 0;
    this.sharedTaken = 0;
    this.sharedTakenBytes = 0;
    this.sharedSends = [];
    this.sharedWaitCount = 0;
    // An acknowledgement was read in the batch being processed (see onEvent).
    this.justAcked = false;

    // Receiving: messages wait in `queue` until the receivers may have them (see `drain`).
    this.queue = [];
    this.queueAcks = [];
    this.queueHandles = [];
    this.queueHead = 0;
    // Descriptors received for handle frames not read yet, in order.
    this.inFds = [];
    // Node-style 'message' listeners of this side (they count as listening, and get handles).
    this.emitterCount = 0;
    this.emitMessage = undefined;
    this.userRef = undefined;
    this.waiters = new Set();
    // Replaced (not mutated) on add/remove, so a loop over it is never disturbed by an iterator ending.
    this.iterators = [];
    this.collector = undefined;
    // Whether the parent's collector counts as a listener: it buffers, or 'message' has listeners (parent.js).
    this.collectorListens = returnFalse;
    // Whether the collector has anything to do with a message (parent.js): when not, a batch skips it.
    this.collectorActive = returnFalse;
    this.onCancel = undefined;
    this.cancelReason = undefined;
    this.onDisconnect = undefined;
    this.endCallbacks = [];
    // A child keeps what arrives before its first receive call, as Node's channel does (execa R26).
    this.buffering = !isParent;
    this.draining = false;
    this.paused = false;
    this.holding = false;
    this.resumeBound = () => {
      this.paused = false;
      this.drain();
    };

    // Lifetime. `connected`: sends allowed. `ended`: no more messages will arrive.
    this.connected = true;
    // An object whose own `connected` data property follows this one's (the parent's subprocess, see
    // markDisconnected()).
    this.connectedMirror = undefined;
    this.ended = false;
    this.endError = undefined;
    this.closed = false;
    this.finished = false;
    this.notified = false;
    this.closeListeners = [];
    this.refs = 0;
    this.baseRef = isParent;
    this.refed = false;

    this.native = undefined;
    this.landing = Buffer.allocUnsafeSlow(LANDING_BYTES);
    this.open(fd);
    this.updateRef();
  }

  open(fd) {
    this.native = openChannel(
      fd,
      this.serialization,
      this.maxMessageSize,
      (frames, written, end, fds, endCode) => this.onEvent(frames, written, end, fds, endCode),
      this.landing,
      spinMicroseconds(),
    );
    if (this.advanced) {
      this.writer.sharer = this.native;
    }
  }

  // ---- sending ----

  /** Encodes `value` into the coalescing buffer and returns a promise settled once it reached the kernel. */
  send(value, strict, throwSync = false) {
    const waiting = this.streamEnd - this.written + this.sharedSentBytes - this.sharedTakenBytes;
    if (waiting > MAX_QUEUED_BYTES) {
      // The other process stopped reading: refuse rather than let this one's memory grow without bound.
      const failure = errors.queueFull(this.prefix, this.other, waiting, MAX_QUEUED_BYTES);
      if (throwSync) {
        throw failure;
      }
      return Promise.reject(failure);
    }
    const w = this.writer;
    if (this.spareBuffer !== undefined && w.pos === 0) {
      this.reclaimWriterBuffer();
    }
    const start = w.pos;
    const externalBefore = w.extLength;
    const sharedBefore = w.sharedLength;
    const sharesBefore = w.shareFds.length;
    const bodyStart = start + HEADER + (strict ? STRICT_PREFIX : 0);
    w.ensure(bodyStart - start);
    w.pos = bodyStart;
    try {
      this.encodeValue(w, value);
    } catch (error) {
      w.truncate(start);
      const failure = errors.unserializable(this.prefix, value, error);
      if (throwSync) {
        // Node's send() throws at once and keeps the channel.
        throw failure;
      }
      // As execa does, a failed send disconnects (R11): the other side learns that nothing more comes.
      queueMicrotask(() => this.disconnect());
      return Promise.reject(failure);
    }
    const external = w.extLength - externalBefore;
    const shared = w.sharedLength - sharedBefore;
    // Counted now: joinBatch() may write the batch at once and take the writer's descriptors.
    const shares = w.shareFds.length - sharesBefore;
    const size = w.pos - bodyStart + external + shared;
    if (size > this.maxMessageSize) {
      w.truncate(start);
      return Promise.reject(errors.tooLarge(this.prefix, size, this.maxMessageSize));
    }
    const buf = w.buf;
    const len = w.pos - start - HEADER + external;
    buf[start] = len & 0xff;
    buf[start + 1] = (len >>> 8) & 0xff;
    buf[start + 2] = (len >>> 16) & 0xff;
    buf[start + 3] = len >>> 24;
    let ackPromise;
    if (strict) {
      buf[start + 4] = KIND_STRICT;
      const id = this.nextStrictId++;
      buf.writeUInt32LE(id >>> 0, start + HEADER);
      buf[start + HEADER + 4] = this.listenerCount > 0 || this.collectorListens() ? 1 : 0;
      ackPromise = this.waitForAck(id);
    } else {
      buf[start + 4] = KIND_MESSAGE;
    }
    this.streamEnd += w.pos - start + external;
    const written = this.joinBatch();
    if (shared !== 0) {
      // Past the window of untaken shared values, settled once the peer took enough of them as well.
      const taken = this.waitForTaken(shares, shared);
      if (taken !== undefined) {
        return Promise.all(ackPromise === undefined ? [written, taken] : [written, taken, ackPromise]).then(noop);
      }
    }
    return ackPromise === undefined ? written : Promise.all([written, ackPromise]).then(noop);
  }

  /**
   * Counts a send's shared values as waiting for the peer. Its promise also waits for the peer to take them when
   * more than SHARED_WINDOW bytes of shared values (its own included) would be waiting: a sender that awaits each
   * send keeps pace with a slower reader, as the kernel's socket buffer makes it for bytes sent inline, without
   * waiting for a round trip on every message.
   */
  waitForTaken(count, bytes) {
    this.sharedSent += count;
    this.sharedSentBytes += bytes;
    const send = {upTo: this.sharedSent, endBytes: this.sharedSentBytes, resolve: undefined, reject: undefined};
    this.sharedSends.push(send);
    if (send.endBytes - this.sharedTakenBytes <= SHARED_WINDOW) {
      return undefined;
    }
    this.sharedWaitCount++;
    this.addRef();
    return new Promise((resolve, reject) => {
      send.resolve = resolve;
      send.reject = reject;
    });
  }

  /** The peer took `count` more shared values (a TAKEN frame). */
  onTaken(count) {
    this.sharedTaken += count;
    const sends = this.sharedSends;
    let resolved = false;
    let taken = 0;
    while (taken < sends.length && sends[taken].upTo <= this.sharedTaken) {
      this.sharedTakenBytes = sends[taken].endBytes;
      resolved = this.settleShared(sends[taken++], undefined) || resolved;
    }
    if (taken !== 0) {
      sends.splice(0, taken);
    }
    // Sends further on wait no more once what is waiting before and with them fits the window.
    for (let i = 0; i < sends.length && sends[i].endBytes - this.sharedTakenBytes <= SHARED_WINDOW; i++) {
      resolved = this.settleShared(sends[i], undefined) || resolved;
    }
    if (resolved) {
      // As for a strict send's ack: the frames after this one in the batch still count as arriving while the
      // send was in flight (execa R24).
      this.justAcked = true;
    }
  }

  /** Settles a send waiting for the peer to take shared values; false if it was not waiting. */
  settleShared(send, error) {
    if (send.resolve === undefined) {
      return false;
    }
    const {resolve, reject} = send;
    send.resolve = undefined;
    send.reject = undefined;
    this.sharedWaitCount--;
    this.removeRef();
    if (error === undefined) {
      resolve();
    } else {
      reject(error);
    }
    return true;
  }

  failSharedWaits(makeError) {
    for (const send of this.sharedSends) {
      if (send.resolve !== undefined) {
        this.settleShared(send, makeError());
      }
    }
    this.sharedSends = [];
    this.sharedTakenBytes = this.sharedSentBytes;
  }

  /** Tells the peer this side took `count` of its shared values, which it may stop counting as waiting. */
  sendTaken(count) {
    const at = this.controlFrame(KIND_TAKEN, 4);
    this.writer.buf.writeUInt32LE(count, at);
    this.scheduleFlush();
  }

  /** Adds a control frame of `kind` with `length` payload bytes to the writer; returns where its payload goes. */
  controlFrame(kind, length) {
    const w = this.writer;
    w.ensure(HEADER + length);
    const p = w.pos;
    w.buf.writeUInt32LE(length, p);
    w.buf[p + 4] = kind;
    w.pos = p + HEADER + length;
    this.streamEnd += HEADER + length;
    return p + HEADER;
  }

  /**
   * Every send coalesced into the same flush shares one promise: the kernel takes the batch's bytes
   * together, so they settle together, and a send costs no promise of its own.
   */
  joinBatch() {
    const batch = this.batch;
    batch.end = this.streamEnd;
    this.scheduleFlush();
    return batch.promise;
  }

  /**
   * Whether this side's own sends are in flight, which holds incoming messages nobody listens for (execa
   * R24): bytes not yet in the kernel, strict sends waiting for their ack, sends waiting for the peer to take
   * their shared values, or an ack (or TAKEN) read in this batch.
   */
  get awaitingOwnSends() {
    return this.sending || this.strictWaits.size > 0 || this.sharedWaitCount > 0 || this.justAcked;
  }

  /** Whether sends are waiting for the kernel to take their bytes. */
  get sending() {
    return this.batch.end !== 0 || this.batchHead < this.batches.length;
  }

  /**
   * The first send after a quiet spell is written at once: its latency then does not include what the caller
   * does before the microtask queue runs (setting up a receive loop, say, which a child's first message
   * waited for: ~0.35 ms). The sends that follow it in the same run of code coalesce, and go out together
   * from a microtask.
   */
  scheduleFlush() {
    // External parts are flushed at once: their bytes are the sender's, who may change them after the call.
    // So are shared values, so that their descriptors do not pile up in this process.
    const w = this.writer;
    if (w.pos >= FLUSH_BYTES - FLUSH_SLACK || w.extLength !== 0 || w.shareFds.length !== 0) {
      this.flush();
    } else if (!this.flushScheduled) {
      if (this.quiet) {
        this.quiet = false;
        settled.then(this.quietBound);
        this.flush();
      } else {
        this.flushScheduled = true;
        settled.then(this.flushBound);
      }
    }
  }

  /** The large buffer lent to Rust becomes the writer's again once Rust has written it all. */
  reclaimWriterBuffer() {
    if (this.closed || !this.native.lending) {
      if (this.spareBuffer.length > this.writer.buf.length) {
        this.writer.buf = this.spareBuffer;
      }
      this.spareBuffer = undefined;
    }
  }

  /**
   * Hands every coalesced frame to Rust in one call. Frames with external parts go as a list of buffers:
   * Rust writes them with one sendmsg and copies only what the kernel did not take, before returning.
   */
  flush() {
    this.flushScheduled = false;
    const w = this.writer;
    if (this.closed) {
      w.reset();
    }
    if (w.pos === 0 && w.extLength === 0) {
      return;
    }
    if (this.batch.end !== 0) {
      this.batches.push(this.batch);
      this.batch = newBatch();
    }
    let written;
    try {
      if (w.shareFds.length !== 0) {
        // The descriptors are Rust's from here on, whatever happens to the call.
        const [fds, at] = w.takeShared();
        written = this.native.writeShared(w.parts(), fds, at);
      } else if (w.extLength !== 0) {
        const lendable = w.lendableTail();
        if (lendable === undefined) {
          written = this.native.writeParts(w.parts());
        } else {
          // The batch ends with bytes of a received frame (a long string sent on): Rust writes what the kernel
          // does not take now from that frame rather than from a copy.
          const parts = w.parts();
          parts.pop();
          written = this.native.writePartsLending(parts, lendable);
        }
      } else if (w.pos >= LEND_BYTES) {
        // A large batch (a long string, a big object): Rust writes the rest from this very buffer rather than
        // copying it, and this side takes a fresh one.
        written = this.native.writeOwned(w.buf, w.pos);
        if (this.native.lending) {
          // Taken back once Rust is done with it (reclaimWriterBuffer): reused memory costs no page faults.
          this.spareBuffer = w.buf.length <= KEEP_WRITER_BYTES ? w.buf : undefined;
          w.buf = Buffer.allocUnsafeSlow(FLUSH_BYTES);
        }
      } else {
        written = this.native.write(w.buf, w.pos);
      }
    } catch (error) {
      w.reset();
      if (error.code === 'EPIPE' || error.code === 'ERR_IPC_CHANNEL_CLOSED') {
        // The peer is gone; what it sent before leaving is still read, then the end of file arrives.
        this.markDisconnected();
        this.rejectSends(() => errors.disconnecting(this.prefix, this.other, error));
      } else {
        this.fail(error);
      }
      return;
    }
    w.reset();
    if (w.buf.length > KEEP_WRITER_BYTES) {
      w.buf = Buffer.allocUnsafe(64 * 1024);
    }
    this.settleSends(written);
  }

  settleSends(written) {
    this.written = written;
    const batches = this.batches;
    let head = this.batchHead;
    while (head < batches.length && batches[head].end <= written) {
      batches[head++].resolve();
    }
    if (head === batches.length) {
      this.batches = [];
      this.batchHead = 0;
    } else {
      this.batchHead = head;
    }
    this.releaseHold();
  }

  /** Held messages go out once nothing of this side is in flight any more, one macrotask later. */
  releaseHold() {
    if (this.holding && !this.awaitingOwnSends) {
      this.holding = false;
      setImmediate(this.resumeBound);
    }
  }

  failStrictWaits(makeError) {
    for (const wait of this.strictWaits.values()) {
      this.removeRef();
      wait.reject(makeError());
    }
    this.strictWaits.clear();
  }

  rejectSends(makeError) {
    if (this.batch.end !== 0) {
      this.batches.push(this.batch);
      this.batch = newBatch();
    }
    for (let i = this.batchHead; i < this.batches.length; i++) {
      this.batches[i].reject(makeError());
    }
    this.batches = [];
    this.batchHead = 0;
  }

  waitForAck(id) {
    return new Promise((resolve, reject) => {
      this.strictWaits.set(id, {resolve, reject});
      this.addRef();
    });
  }

  sendAck(id, listening) {
    const at = this.controlFrame(KIND_ACK, 5);
    const buf = this.writer.buf;
    buf.writeUInt32LE(id, at);
    buf[at + 4] = listening ? 1 : 0;
    this.scheduleFlush();
  }

  /**
   * Sends a message with a handle (`{type, fd}` from handles.js). Everything coalesced before it goes
   * first, so messages and handles keep their order.
   */
  sendHandle(value, {type, fd}) {
    this.flush();
    const w = this.writer;
    w.ensure(HEADER + 1);
    w.pos = HEADER + 1;
    // The descriptor travels with the frame's first byte, in one buffer: no external parts here.
    w.externalMin = Infinity;
    try {
      this.encodeValue(w, value);
    } catch (error) {
      w.reset();
      return Promise.reject(errors.unserializable(this.prefix, value, error));
    } finally {
      w.externalMin = FLUSH_BYTES;
    }
    w.buf.writeUInt32LE(w.pos - HEADER, 0);
    w.buf[4] = KIND_HANDLE;
    w.buf[HEADER] = type;
    this.streamEnd += w.pos;
    const batch = newBatch();
    batch.end = this.streamEnd;
    this.batches.push(batch);
    const {promise} = batch;
    let written;
    try {
      written = this.native.writeHandle(w.buf.subarray(0, w.pos), fd);
    } catch (error) {
      w.reset();
      this.rejectSends(() => errors.disconnecting(this.prefix, this.other, error));
      return promise;
    }
    w.reset();
    this.settleSends(written);
    return promise;
  }

  /** Reads what the socket holds now; used when the peer is known to have exited. */
  readNow() {
    if (!this.closed) {
      this.native.readNow();
    }
  }

  /** Bytes waiting for the kernel, or shared values for the peer to take them: the Node-style `send()` return value. */
  get queuedBytes() {
    // Shared values the peer has not taken count too: as an inline message that size, they wait for it.
    const untaken = this.sharedSentBytes - this.sharedTakenBytes;
    return this.writer.pos + this.writer.extLength + untaken + (this.closed ? 0 : this.native.queued);
  }

  /** Sends a graceful-cancel request carrying `reason`; settles once written. */
  sendCancel(reason) {
    const w = this.writer;
    const start = w.pos;
    const externalBefore = w.extLength;
    w.ensure(HEADER);
    w.pos = start + HEADER;
    try {
      this.encodeValue(w, reason);
    } catch (error) {
      w.truncate(start);
      return Promise.reject(error);
    }
    const external = w.extLength - externalBefore;
    w.buf.writeUInt32LE(w.pos - start - HEADER + external, start);
    w.buf[start + 4] = KIND_CANCEL;
    this.streamEnd += w.pos - start + external;
    return this.joinBatch();
  }

  // ---- receiving ----

  onEvent(frames, written, end, fds, endCode) {
    if (fds !== undefined) {
      this.inFds.push(...fds);
    }
    // Messages first: one that arrived while a send was still in flight is held for a receive call made
    // right after that send resolves (execa R24).
    if (typeof frames === 'number') {
      // Rust copied the batch to the start of the landing buffer, which is overwritten by the next batch:
      // everything is decoded now, and the decoder copies binaries this small (see LANDING_BYTES).
      this.readFrames(this.landing, frames);
    } else if (frames !== undefined) {
      // A Buffer made by N-API has another hidden class than those made in JS (the landing buffer): seen
      // through a JS-made view, the decoder's byte loads stay monomorphic.
      this.readFrames(Buffer.from(frames.buffer, frames.byteOffset, frames.length), frames.length);
    }
    if (frames !== undefined) {
      // No other channel's values take this one's descriptors.
      codec.useFds(undefined, 0);
      const taken = codec.takeSharedTaken();
      if (taken !== 0 && this.connected) {
        this.sendTaken(taken);
      }
    }
    if (this.justAcked) {
      // Strict sends answered in this batch counted as in flight for the frames after their ack; their
      // continuations run before the held messages go out (releaseHold waits a macrotask).
      this.justAcked = false;
      this.releaseHold();
    }
    if (written > this.written) {
      this.settleSends(written);
    }
    if (end !== undefined) {
      if (endCode === 'ERR_IPC_TRUNCATED') {
        // The peer died in the middle of a frame: for pending calls it exited; the result says what was cut.
        this.resultError = errors.channelBroken(this.other, errors.makeError(end, {code: endCode}));
        this.onNativeEnd(undefined);
      } else {
        this.onNativeEnd(end === '' ? undefined : errors.makeError(end, {code: endCode}));
      }
    }
  }

  /**
   * Whether a message read now goes straight to the iterators (if any), as `drain` would send it: nothing
   * waits in the queue, no `getOneMessage()` or 'message' listener, not buffering or paused.
   */
  get deliversDirectly() {
    return this.queueHead === this.queue.length && this.waiters.size === 0 && this.emitterCount === 0 && !this.buffering && !this.paused;
  }

  readFrames(frames, total) {
    codec.useSource(frames);
    codec.useFds(this.inFds, this.maxMessageSize);
    let p = 0;
    // Rust checked every header (length within limits, known kind), so this walk only slices.
    const iterators = this.iterators;
    if (iterators.length === 1 && !this.collectorActive() && this.deliversDirectly) {
      // The usual case, checked once per batch: one `getEachMessage()` loop listens and nothing else (the
      // parent's collector, if any, has nothing to do), so a run of MESSAGE frames goes straight to it. Nothing
      // in this loop runs user code, so that stays true for the whole run.
      const iterator = iterators[0];
      // In 'advanced' mode the decoder is set up once for the whole run (~150 instructions a small message fewer).
      const run = this.advanced && codec.beginRun(frames);
      const decode = run ? codec.runValue : this.decodeValue;
      while (p < total && frames[p + 4] === KIND_MESSAGE) {
        const start = p + HEADER;
        const end = start + frameLength(frames, p);
        let value;
        try {
          value = decode(frames, start, end);
        } catch (error) {
          if (run) {
            codec.endRun();
          }
          this.fail(error);
          return;
        }
        iterator.push(value);
        p = end;
      }
      if (run) {
        codec.endRun();
      }
    }
    while (p < total) {
      const len = frameLength(frames, p);
      const kind = frames[p + 4];
      const start = p + HEADER;
      p = start + len;
      if (kind === KIND_MESSAGE || kind === KIND_STRICT) {
        const valueStart = kind === KIND_STRICT ? start + STRICT_PREFIX : start;
        let value;
        try {
          value = this.decodeValue(frames, valueStart, p);
        } catch (error) {
          this.fail(error);
          return;
        }
        if (kind === KIND_STRICT) {
          this.receive(value, frames.readUInt32LE(start), frames[start + 4] === 1);
        } else if (this.deliversDirectly) {
          // Fast path: nothing waits in the queue and only iterators (or nobody) listen, so the message
          // goes straight to them, as `drain` would do with it.
          if (this.collector !== undefined) {
            this.collector(value, undefined);
          }
          const iterators = this.iterators;
          if (iterators.length > 0) {
            for (let i = 0; i < iterators.length; i++) {
              iterators[i].push(value);
            }
          } else if (this.connected && this.awaitingOwnSends) {
            this.enqueue(value, 0, false, undefined);
          }
        } else {
          this.receive(value, 0, false);
        }
      } else if (kind === KIND_HANDLE) {
        const fd = this.inFds.shift();
        let value;
        try {
          value = this.decodeValue(frames, start + 1, p);
          if (fd === undefined) {
            throw new Error('a handle frame arrived without its file descriptor');
          }
        } catch (error) {
          if (fd !== undefined) {
            closeFd(fd);
          }
          this.fail(error);
          return;
        }
        // The descriptor becomes an object only when a listener takes it: a live socket or server would
        // keep this process alive, so one nobody takes is closed as a bare descriptor.
        this.receive(value, 0, false, {type: frames[start], fd});
      } else if (kind === KIND_ACK) {
        this.onAck(frames.readUInt32LE(start), frames[start + 4] === 1);
      } else if (kind === KIND_TAKEN) {
        this.onTaken(frames.readUInt32LE(start));
      } else if (kind === KIND_CANCEL) {
        let reason;
        try {
          reason = this.decodeValue(frames, start, p);
        } catch (error) {
          this.fail(error);
          return;
        }
        this.cancelReason = {reason};
        this.onCancel?.(reason);
      }
    }
    this.drain();
  }

  receive(value, ackId, senderListening, handle) {
    if (this.collector !== undefined) {
      this.collector(value, handle);
      // The parent's 'message' event took the handle, or nobody will.
      handle = undefined;
    }
    this.enqueue(value, ackId, senderListening, handle);
  }

  enqueue(value, ackId, senderListening, handle) {
    this.queue.push(value);
    this.queueHandles.push(handle);
    // 0 when not strict; otherwise what the acknowledgement needs.
    this.queueAcks.push(ackId === 0 ? 0 : {id: ackId, senderListening});
  }

  onAck(id, listening) {
    const wait = this.strictWaits.get(id);
    if (wait === undefined) {
      return;
    }
    this.strictWaits.delete(id);
    this.justAcked = true;
    this.removeRef();
    if (listening) {
      wait.resolve();
    } else {
      wait.reject(errors.strictNotListening(this.prefix, this.other));
      this.disconnect();
    }
    this.releaseHold();
  }

  get listenerCount() {
    return this.waiters.size + this.iterators.length + this.emitterCount;
  }

  /**
   * Emits queued messages to the receivers. Iterators buffer, so a batch goes to them in one pass; after a
   * message resolved a `getOneMessage()`, the next one waits one macrotask so that code doing
   * `await getOneMessage()` twice in a row is listening again before it is emitted (execa R23). While nobody
   * listens and this side still has sends in flight, messages are held (execa R24), so that
   * `await sendMessage(a); await getOneMessage()` never misses the reply.
   */
  drain() {
    if (this.draining || this.paused || this.buffering) {
      return;
    }
    this.draining = true;
    try {
      while (this.queueHead < this.queue.length) {
        const listening = this.listenerCount > 0;
        if (!listening && this.connected && this.awaitingOwnSends) {
          const head = this.queueAcks[this.queueHead];
          if (head !== 0 && !head.senderListening && this.strictWaits.size > 0) {
            // Both sides wait for the other to acknowledge, and neither listens (execa R16).
            this.failStrictWaits(() => errors.strictDeadlock(this.prefix, this.other));
            this.disconnect();
            continue;
          }
          this.holding = true;
          return;
        }
        const index = this.queueHead++;
        const value = this.queue[index];
        const ack = this.queueAcks[index];
        const handle = this.queueHandles[index];
        this.queue[index] = undefined;
        this.queueHandles[index] = undefined;
        if (ack !== 0 && this.connected) {
          this.sendAck(ack.id, listening || this.collectorListens());
        }
        if (!listening) {
          if (handle !== undefined) {
            handles().dropHandle(handle);
          }
          continue;
        }
        let listenerError;
        if (this.emitterCount > 0) {
          try {
            this.emitMessage(value, handle === undefined ? undefined : handles().reviveHandle(handle));
          } catch (error) {
            listenerError = {error};
          }
        } else if (handle !== undefined) {
          handles().dropHandle(handle);
        }
        const iterators = this.iterators;
        for (let i = 0; i < iterators.length; i++) {
          iterators[i].push(value);
        }
        const resolvedOne = this.waiters.size > 0 && this.resolveWaiters(value);
        if (listenerError !== undefined) {
          // A throwing 'message' listener is an uncaught exception, as with Node, but it must not stall
          // the queue: it surfaces on the next tick, and the next message waits until it has.
          process.nextTick(() => {
            throw listenerError.error;
          });
        }
        if ((resolvedOne || listenerError !== undefined) && this.queueHead < this.queue.length) {
          this.paused = true;
          setImmediate(this.resumeBound);
          return;
        }
      }
      this.queue = [];
      this.queueAcks = [];
      this.queueHandles = [];
      this.queueHead = 0;
      if (this.ended) {
        this.finishEnd();
      }
    } finally {
      this.draining = false;
    }
  }

  resolveWaiters(value) {
    let resolved = false;
    for (const waiter of this.waiters) {
      if (waiter.filter !== undefined) {
        let keep;
        try {
          keep = waiter.filter(value);
        } catch (error) {
          this.settleWaiter(waiter);
          waiter.reject(error);
          // A receive that fails disconnects, as in execa (R20, R21).
          queueMicrotask(() => this.disconnect());
          continue;
        }
        if (!keep) {
          continue;
        }
      }
      this.settleWaiter(waiter);
      waiter.resolve(value);
      resolved = true;
    }
    return resolved;
  }

  settleWaiter(waiter) {
    this.waiters.delete(waiter);
    if (waiter.reference) {
      this.removeRef();
    }
  }

  /** Starts delivery in a child: the first receive call ends the start-up buffering. */
  startReceiving() {
    if (this.buffering) {
      this.buffering = false;
      settled.then(this.drainBound);
    }
  }

  /** Whether a new receive call can still get a message. */
  get receivable() {
    return !(this.ended && this.queueHead >= this.queue.length && !this.buffering);
  }

  getOne(filter, reference) {
    return new Promise((resolve, reject) => {
      const waiter = {filter, reference, resolve, reject};
      this.waiters.add(waiter);
      if (reference) {
        this.addRef();
      }
      this.startReceiving();
      if (this.queueHead < this.queue.length) {
        settled.then(this.drainBound);
      }
    });
  }

  addIterator(iterator) {
    this.iterators = [...this.iterators, iterator];
    if (iterator.reference) {
      this.addRef();
    }
    this.startReceiving();
    if (this.queueHead < this.queue.length || this.ended) {
      settled.then(this.drainBound);
    }
  }

  removeIterator(iterator) {
    if (this.iterators.includes(iterator)) {
      this.iterators = this.iterators.filter((other) => other !== iterator);
      if (iterator.reference) {
        this.removeRef();
      }
    }
  }

  // ---- lifetime ----

  addRef() {
    this.refs++;
    this.updateRef();
  }

  removeRef() {
    this.refs--;
    this.updateRef();
  }

  setBaseRef(keepAlive) {
    this.baseRef = keepAlive;
    this.updateRef();
  }

  updateRef() {
    // An explicit ref()/unref() of the Node-style API wins over counting, as in Node.
    const want = this.userRef ?? (this.baseRef || this.refs > 0);
    if (want !== this.refed && !this.closed) {
      this.refed = want;
      this.native.setRef(want);
    }
  }

  /** This side ends the channel; bytes already passed to `send` are still delivered. */
  disconnect() {
    if (!this.connected) {
      return;
    }
    this.flush();
    this.markDisconnected();
    if (!this.closed) {
      this.native.close(true);
      // With nothing queued the socket closed at once; otherwise Rust reports the end once it is written.
      if (this.native.queued === 0) {
        this.closed = true;
        this.handOnLargeBuffers();
      }
    }
    this.endReceiving();
  }

  /**
   * Sends are refused from now on. The mirror's `connected` is a data property set here rather than a getter:
   * redefining the subprocess's own `connected` as an accessor turned that ChildProcess into a dictionary-mode
   * object, whose every property read (`subprocess.sendMessage` in a send loop) was a hash lookup.
   */
  markDisconnected() {
    this.connected = false;
    if (this.connectedMirror !== undefined) {
      this.connectedMirror.connected = false;
    }
  }

  /** The peer's bytes could not be decoded: nothing after them can be trusted. */
  fail(error) {
    if (!this.closed) {
      this.native.close(false);
    }
    this.onNativeEnd(error);
  }

  /** Rust closed the socket: end of file, a bad frame, or a graceful local close that finished. */
  onNativeEnd(error) {
    if (error !== undefined && this.endError === undefined) {
      this.endError = errors.channelBroken(this.other, error);
    }
    this.closed = true;
    this.handOnLargeBuffers();
    this.markDisconnected();
    this.rejectSends(() => this.endError ?? errors.disconnecting(this.prefix, this.other));
    // Shared values the peer never said it took may not have reached it.
    this.failSharedWaits(() => this.endError ?? errors.disconnecting(this.prefix, this.other));
    this.endReceiving();
    this.maybeNotifyClosed();
  }

  /**
   * The channel is closed: its large writer buffers, which Rust no longer writes from, may serve another.
   * (Not over Node's own channel, which has no native side.)
   */
  handOnLargeBuffers() {
    const w = this.writer;
    if (this.native === undefined || this.native.lending) {
      return;
    }
    if (this.spareBuffer !== undefined) {
      codec.offerLargeBuffer(this.spareBuffer);
      this.spareBuffer = undefined;
    }
    if (codec.offerLargeBuffer(w.buf)) {
      w.buf = Buffer.allocUnsafeSlow(64);
    }
    w.reset();
  }

  endReceiving() {
    this.failStrictWaits(() => this.endError ?? errors.strictExited(this.prefix, this.other));
    if (!this.ended) {
      this.ended = true;
      for (const fd of this.inFds.splice(0)) {
        closeFd(fd);
      }
      this.onDisconnect?.();
      for (const callback of this.endCallbacks) {
        callback();
      }
      this.drain();
    }
  }

  /** Every queued message was emitted after the end: pending receives learn that nothing more comes. */
  finishEnd() {
    if (this.finished) {
      return;
    }
    this.finished = true;
    const error = this.endError;
    for (const waiter of [...this.waiters]) {
      this.settleWaiter(waiter);
      waiter.reject(error ?? errors.getOneDisconnected(this.prefix, this.other));
    }
    for (const iterator of this.iterators) {
      iterator.end(error);
    }
    this.maybeNotifyClosed();
  }

  /** Calls `listener(error)` once the socket is closed and every message was emitted. */
  onClosed(listener) {
    if (this.notified) {
      listener(this.endError ?? this.resultError);
    } else {
      this.closeListeners.push(listener);
    }
  }

  maybeNotifyClosed() {
    if (!this.closed || !this.finished || this.notified) {
      return;
    }
    this.notified = true;
    for (const listener of this.closeListeners.splice(0)) {
      listener(this.endError ?? this.resultError);
    }
  }

  /** Last chance at process exit: everything passed to `send` goes to the kernel, waiting a bounded time. */
  flushAtExit(timeoutMs) {
    if (this.closed) {
      return;
    }
    this.flush();
    if (!this.closed) {
      this.native.flushSync(timeoutMs);
    }
  }
}

module.exports = {Channel, DEFAULT_MAX_MESSAGE_SIZE};
