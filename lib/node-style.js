'use strict';

// Node's own IPC API on top of the channel, for code written against child_process: `send()` with an
// optional handle and callback, 'message' and 'disconnect' events, `disconnect()`, `connected`, and in the
// child `ref()`/`unref()`. It shares the channel's one queue and order with execa's methods.

const {EventEmitter} = require('node:events');
// Loaded with the first handle sent (see channel.js).
const handles = () => require('./handles.js');
const errors = require('./errors.js');
const {describe, fail} = require('./validate.js');

// `send()` returns false once this many bytes wait for the kernel.
const HIGH_WATER_MARK = 1024 * 1024;

const closedError = () =>
  errors.makeError('Channel closed', {code: 'ERR_IPC_CHANNEL_CLOSED'});

/** Sorts out Node's optional arguments: (message, [sendHandle], [options], [callback]). */
const parseSendArguments = (call, message, sendHandle, options, callback) => {
  if (typeof sendHandle === 'function') {
    callback = sendHandle;
    sendHandle = undefined;
    options = undefined;
  } else if (typeof options === 'function') {
    callback = options;
    options = undefined;
  }
  if (callback !== undefined && typeof callback !== 'function') {
    throw fail(call, `the callback must be a function, not ${describe(callback)}.`);
  }
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw fail(call, `its options must be an object, not ${describe(options)}.`);
  }
  const handle = sendHandle === undefined || sendHandle === null ? undefined : handles().describeHandle(call, sendHandle);
  return {handle, keepOpen: options?.keepOpen === true, callback};
};

/**
 * Node's `send()`. `onError` reports an asynchronous failure when there is no callback (Node emits
 * 'error' on the process object).
 */
const nodeSend = (call, channel, onError, message, sendHandle, options, callback) => {
  const parsed = parseSendArguments(call, message, sendHandle, options, callback);
  if (channel === undefined || !channel.connected) {
    const error = closedError();
    if (parsed.callback === undefined) {
      throw error;
    }
    process.nextTick(parsed.callback, error);
    return false;
  }
  const written =
    parsed.handle === undefined ? channel.send(message, false, true) : channel.sendHandle(message, parsed.handle);
  written.then(
    () => {
      // As in Node, a sent socket now belongs to the other process unless `keepOpen` says otherwise.
      if (parsed.handle !== undefined && parsed.handle.type === handles().HANDLE_SOCKET && !parsed.keepOpen) {
        sendHandle.destroy();
      }
      parsed.callback?.(null);
    },
    (error) => {
      if (parsed.callback !== undefined) {
        parsed.callback(error);
      } else {
        onError(error);
      }
    },
  );
  return channel.queuedBytes < HIGH_WATER_MARK;
};

/**
 * The child's `channel` object: an EventEmitter with Node's process IPC methods. Its 'message' and
 * 'disconnect' listeners keep the process alive, as Node's `process.on('message')` does, unless `unref()`
 * was called.
 */
class ChildChannel extends EventEmitter {
  /** @param {() => import('./channel.js').Channel | undefined} getChannel */
  constructor(getChannel) {
    super();
    this.getChannel = getChannel;
    this.hooked = undefined;
    this.on('newListener', (event) => this.countListener(event, 1));
    this.on('removeListener', (event) => this.countListener(event, -1));
  }

  /** Connects this emitter to the channel once; throws when the process has no channel. */
  hook(name) {
    if (this.hooked !== undefined) {
      return this.hooked;
    }
    const channel = this.getChannel();
    if (channel === undefined) {
      throw errors.notEnabled('', `channel.${name}`);
    }
    this.hooked = channel;
    channel.emitMessage = (message, handle) => this.emit('message', message, handle);
    channel.endCallbacks.push(() => process.nextTick(() => this.emit('disconnect')));
    return channel;
  }

  countListener(event, delta) {
    if (event !== 'message' && event !== 'disconnect') {
      return;
    }
    const channel = this.hook('on');
    if (event === 'message') {
      channel.emitterCount += delta;
      channel.startReceiving();
    }
    if (delta > 0) {
      channel.addRef();
    } else {
      channel.removeRef();
    }
  }

  get connected() {
    const channel = this.hooked ?? this.getChannel();
    return channel !== undefined && channel.connected;
  }

  send(message, sendHandle, options, callback) {
    const channel = this.hook('send');
    return nodeSend('channel.send()', channel, (error) => this.emit('error', error), message, sendHandle, options, callback);
  }

  disconnect() {
    this.hook('disconnect').disconnect();
  }

  ref() {
    const channel = this.hook('ref');
    channel.userRef = true;
    channel.updateRef();
  }

  unref() {
    const channel = this.hook('unref');
    channel.userRef = false;
    channel.updateRef();
  }
}

module.exports = {nodeSend, ChildChannel, HIGH_WATER_MARK};
