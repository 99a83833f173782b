'use strict';

// The child side: finds the inherited channel end through an environment variable, removes the variable
// from process.env (so grandchildren never see it) and makes the descriptor close-on-exec (so they never
// inherit it), then offers execa's three methods on it.

const {Channel} = require('./channel.js');
const errors = require('./errors.js');
const {ChildChannel} = require('./node-style.js');
const {ipcMethods} = require('./methods.js');

const ENV_NAME = 'NATIVE_IPC_CHANNEL';
// Time granted at process exit for the peer to take the last queued bytes.
const EXIT_FLUSH_MS = 2000;

// `var`: read on every send and receive call, without the uninitialized-value check of a module-level `let`
// (see codec.js).
var adopted = false;
var channel;
var adoptError;
var fallback;

/** Opens this process's channel end, once; undefined when the process was not started with a channel. */
const adopt = () => {
  if (adopted) {
    return channel;
  }
  adopted = true;
  const spec = process.env[ENV_NAME];
  if (spec === undefined) {
    return undefined;
  }
  delete process.env[ENV_NAME];
  const match = /^(\d+):(\w+):(\d+)$/.exec(spec);
  if (match === null) {
    adoptError = new Error(
      `The ${ENV_NAME} environment variable is malformed: ${JSON.stringify(spec)}; a parent that opens a channel sets it to <fd>:<advanced|json>:<maxMessageSize>.`,
    );
    return undefined;
  }
  const [, fdText, serialization, maxText] = match;
  const fd = Number(fdText);
  try {
    channel = new Channel(fd, {serialization, maxMessageSize: Number(maxText), isParent: false});
  } catch (error) {
    adoptError = error;
    return undefined;
  }
  process.on('exit', () => channel.flushAtExit(EXIT_FLUSH_MS));
  return channel;
};

/** The native channel, or Node's own when a Node fork() or execa parent started this process. */
const currentChannel = () => {
  const native = adopt();
  if (native !== undefined || adoptError !== undefined) {
    return native;
  }
  if (fallback === undefined && typeof process.send === 'function' && process.channel) {
    const {NodeChannel} = require('./node-channel.js');
    fallback = new NodeChannel();
  }
  return fallback;
};

const getChannel = (name) => {
  const current = currentChannel();
  if (current === undefined) {
    const error = errors.notEnabled('', name);
    if (adoptError !== undefined) {
      error.cause = adoptError;
    }
    throw error;
  }
  return current;
};

// The child's loops end without disconnecting (execa R33).
const {sendMessage, getOneMessage, getEachMessage} = ipcMethods({prefix: '', getChannel});

// cancel.js is loaded on first use: most children never ask for the signal.
const getCancelSignal = () => require('./cancel.js').getCancelSignal(currentChannel);

/** Node's process IPC API (send, 'message', 'disconnect', ref/unref) over the same channel. */
const nodeStyleChannel = new ChildChannel(currentChannel);

module.exports = {
  adopt,
  sendMessage,
  getOneMessage,
  getEachMessage,
  getCancelSignal,
  channel: nodeStyleChannel,
  ENV_NAME,
};
