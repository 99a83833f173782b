'use strict';

// Fallback for a child started by Node's own fork() or by execa: the same methods and semantics over
// Node's `process.channel`, so one child script works under every parent. To interoperate with execa
// parents it speaks execa's wrapper objects for strict acknowledgements and cancellation; Node's channel has
// no frame kinds for them.

const {Channel} = require('./channel.js');
const errors = require('./errors.js');

const REQUEST = 'execa:ipc:request';
const RESPONSE = 'execa:ipc:response';
const CANCEL = 'execa:ipc:cancel';

const isControl = (message, type) =>
  typeof message === 'object' && message !== null && message.type === type;

class NodeChannel extends Channel {
  constructor() {
    super(undefined, {serialization: 'advanced', maxMessageSize: Number.MAX_SAFE_INTEGER, isParent: false});
  }

  open() {
    this.inFlight = 0;
    // Our strict requests carry Number ids: JSON has no BigInt, and execa echoes any id back as it came.
    this.nextRequestId = 0;
    // The peer's request ids (execa's are BigInts from 0n) stand behind local ids from 1: Channel takes 0
    // for "not strict".
    this.peerIds = new Map();
    this.nextPeerId = 1;
    this.onMessage = (message) => this.receiveNode(message);
    this.onNodeDisconnect = () => this.onNativeEnd(undefined);
    process.on('message', this.onMessage);
    process.once('disconnect', this.onNodeDisconnect);
    // Node counts each 'message'/'disconnect' listener as a reason to stay alive; ours must not be one.
    process.channel?.unrefCounted?.();
    process.channel?.unrefCounted?.();
  }

  receiveNode(message) {
    if (isControl(message, RESPONSE)) {
      this.onAck(message.id, message.message === true);
      // Node delivers each message in its own tick, so no later message shares this one's batch: the
      // acknowledged send stops counting as in flight at once (see Channel#onEvent).
      this.justAcked = false;
      this.releaseHold();
      return;
    }
    if (isControl(message, CANCEL)) {
      this.cancelReason = {reason: message.message};
      this.onCancel?.(message.message);
      return;
    }
    if (isControl(message, REQUEST)) {
      const localId = this.nextPeerId++;
      this.peerIds.set(localId, message.id);
      this.receive(message.message, localId, message.hasListeners === true);
    } else {
      this.receive(message, 0, false);
    }
    this.drain();
  }

  get sending() {
    return this.inFlight > 0;
  }

  send(value, strict) {
    let wire = value;
    let ackPromise;
    if (strict) {
      const id = this.nextRequestId++;
      wire = {id, type: REQUEST, message: value, hasListeners: this.listenerCount > 0};
      ackPromise = this.waitForAck(id);
    }
    const written = new Promise((resolve, reject) => {
      this.inFlight++;
      const done = (error) => {
        this.inFlight--;
        this.releaseHold();
        if (error) {
          this.disconnect();
          reject(error.code === 'EPIPE' ? errors.disconnecting(this.prefix, this.other, error) : error);
        } else {
          resolve();
        }
      };
      try {
        process.send(wire, done);
      } catch (error) {
        this.inFlight--;
        queueMicrotask(() => this.disconnect());
        reject(errors.unserializable(this.prefix, value, error));
      }
    });
    return ackPromise === undefined ? written : Promise.all([written, ackPromise]).then(() => undefined);
  }

  sendAck(localId, listening) {
    const id = this.peerIds.get(localId);
    this.peerIds.delete(localId);
    if (process.connected) {
      process.send({id, type: RESPONSE, message: listening}, () => {});
    }
  }

  updateRef() {
    const want = this.refs > 0;
    if (want !== this.refed && process.channel) {
      this.refed = want;
      if (want) {
        process.channel.refCounted?.();
      } else {
        process.channel.unrefCounted?.();
      }
    }
  }

  flush() {}

  flushAtExit() {}

  disconnect() {
    if (!this.connected) {
      return;
    }
    this.connected = false;
    if (process.connected) {
      process.disconnect();
    }
    this.closed = true;
    this.endReceiving();
  }

  fail(error) {
    this.endError ??= errors.channelBroken(this.other, error);
    this.disconnect();
  }

  onNativeEnd(error) {
    process.off('message', this.onMessage);
    super.onNativeEnd(error);
  }
}

module.exports = {NodeChannel};
