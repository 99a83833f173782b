'use strict';

// One small helper per failure, each naming the method the user called and what the other process did.
// `prefix` is 'subprocess.' in the parent and '' in the child; `other` is 'subprocess' or 'parent process'.

const makeError = (message, {code, cause, Type = Error} = {}) => {
  const error = cause === undefined ? new Type(message) : new Type(message, {cause});
  if (code !== undefined) {
    error.code = code;
  }
  return error;
};

const notEnabled = (prefix, name) =>
  makeError(
    prefix === ''
      ? `${name}() can only be used if the \`ipc\` option is \`true\`: start this process with native-ipc's fork(), or spawn(file, args, {ipc: true}).`
      : `subprocess.${name}() can only be used if the \`ipc\` option is \`true\`.`,
    {code: 'ERR_IPC_NOT_ENABLED'},
  );

const notConnected = (prefix, other, name) =>
  makeError(`${prefix}${name}() cannot be used: the ${other} has already exited or disconnected.`, {
    code: 'ERR_IPC_CHANNEL_CLOSED',
  });

const disconnecting = (prefix, other, cause) =>
  makeError(`${prefix}sendMessage() cannot be used: the ${other} is disconnecting.`, {
    code: 'ERR_IPC_CHANNEL_CLOSED',
    cause,
  });

const unserializable = (prefix, message, cause) =>
  makeError(
    `${prefix}sendMessage()'s argument type is invalid: the message cannot be serialized: ${safeString(message)}.\n${cause.message}`,
    {code: 'ERR_IPC_UNSERIALIZABLE', cause, Type: TypeError},
  );

const tooLarge = (prefix, size, max) =>
  makeError(
    `${prefix}sendMessage()'s argument is too large: it encodes to ${size} bytes, above the \`maxMessageSize\` of ${max} bytes. Send it in parts, or raise \`maxMessageSize\` on both sides.`,
    {code: 'ERR_IPC_MESSAGE_TOO_LARGE', Type: RangeError},
  );

const queueFull = (prefix, other, queued, max) =>
  makeError(
    `${prefix}sendMessage() cannot queue more: ${queued} bytes wait for the ${other} to read them, above the limit of ${max} bytes. The ${other} is not reading (stopped or busy); await earlier sends before sending more.`,
    {code: 'ERR_IPC_QUEUE_FULL'},
  );

const getOneDisconnected = (prefix, other) =>
  makeError(`${prefix}getOneMessage() could not complete: the ${other} exited or disconnected.`, {
    code: 'ERR_IPC_CHANNEL_CLOSED',
  });

const channelBroken = (other, cause) =>
  makeError(`The IPC channel with the ${other} failed: ${cause.message}`, {
    code: cause.code ?? 'ERR_IPC_BAD_FRAME',
    cause,
  });

const strictNotListening = (prefix, other) =>
  makeError(`${prefix}sendMessage() failed: the ${other} is not listening to incoming messages.`, {
    code: 'ERR_IPC_NOT_LISTENING',
  });

const strictExited = (prefix, other) =>
  makeError(`${prefix}sendMessage() failed: the ${other} exited without listening to incoming messages.`, {
    code: 'ERR_IPC_NOT_LISTENING',
  });

const strictDeadlock = (prefix, other) =>
  makeError(
    `${prefix}sendMessage() failed: the ${other} is sending a message too, instead of listening to incoming messages.
This can be fixed by both sending a message and listening to incoming messages at the same time:

const [receivedMessage] = await Promise.all([
	${prefix}getOneMessage(),
	${prefix}sendMessage(message, {strict: true}),
]);`,
    {code: 'ERR_IPC_DEADLOCK'},
  );

const safeString = (value) => {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
};

module.exports = {
  makeError,
  notEnabled,
  notConnected,
  disconnecting,
  unserializable,
  tooLarge,
  queueFull,
  getOneDisconnected,
  channelBroken,
  strictNotListening,
  strictExited,
  strictDeadlock,
};
