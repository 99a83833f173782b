'use strict';

// Graceful cancellation (execa R53-R57). Parent: when `cancelSignal` aborts, either ask the child to stop
// over the channel (`gracefulCancel`), then kill it after `forceKillAfterDelay`, or kill it at once.
// Child: getCancelSignal() returns one process-wide AbortSignal, aborted by its own parent's cancel request
// or by its own channel's end - never by a subprocess's channel (execa R58 fixed).

const validate = require('./validate.js');

const CANCEL_CALL = "`cancelSignal`'s `controller.abort()`";

const DEFAULT_FORCE_KILL_DELAY = 5000;

const validateCancelOptions = (call, options, ipc, serialization) => {
  const {cancelSignal, gracefulCancel = false, forceKillAfterDelay = DEFAULT_FORCE_KILL_DELAY} = options;
  if (cancelSignal !== undefined && !(cancelSignal instanceof AbortSignal)) {
    throw validate.fail(call, `the \`cancelSignal\` option must be an AbortSignal, not ${validate.describe(cancelSignal)}.`);
  }
  validate.checkBoolean(call, 'gracefulCancel', gracefulCancel, false);
  if (gracefulCancel) {
    if (cancelSignal === undefined) {
      throw validate.fail(call, 'the `cancelSignal` option must be defined when setting the `gracefulCancel` option.');
    }
    if (!ipc) {
      throw validate.fail(call, 'the `ipc` option cannot be false when setting the `gracefulCancel` option.');
    }
    if (serialization === 'json') {
      throw validate.fail(call, "the `serialization` option cannot be 'json' when setting the `gracefulCancel` option.");
    }
  }
  if (forceKillAfterDelay !== false && forceKillAfterDelay !== true && !(Number.isInteger(forceKillAfterDelay) && forceKillAfterDelay >= 0)) {
    throw validate.fail(call, `the \`forceKillAfterDelay\` option must be a boolean or a non-negative integer (milliseconds), not ${validate.describe(forceKillAfterDelay)}.`);
  }
  const killDelay = forceKillAfterDelay === true ? DEFAULT_FORCE_KILL_DELAY : forceKillAfterDelay;
  return {cancelSignal, gracefulCancel, killDelay};
};

/** What the result needs to know about cancellation. */
class CancelState {
  constructor() {
    this.isCanceled = false;
    this.isGracefullyCanceled = false;
    this.reason = undefined;
    this.error = undefined;
    this.killedAfter = undefined;
  }
}

/** A DOMException reason travels as a plain Error with the same message and stack (execa R54). */
const toSendable = (reason) => {
  if (typeof DOMException === 'function' && reason instanceof DOMException) {
    const error = new Error(reason.message);
    Object.defineProperty(error, 'stack', {value: reason.stack, enumerable: false, writable: true, configurable: true});
    return error;
  }
  return reason;
};

/** String(value) for an error message, also for values whose conversion throws (null prototype, ...). */
const printable = (value) => {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
};

/** Why the cancel request could not be sent: the channel was closing, or the reason cannot be encoded. */
const sendFailure = (reason, error) =>
  error.code === 'ERR_IPC_CHANNEL_CLOSED'
    ? new Error(`${CANCEL_CALL} cannot be used: the subprocess is disconnecting.`, {cause: error})
    : new TypeError(
        `${CANCEL_CALL}'s argument type is invalid: the message cannot be serialized: ${printable(reason)}.\n${error.message}`,
        {cause: error},
      );

/** Wires `cancelSignal` to the subprocess; returns the state the result reads. */
const watchCancel = ({cancelSignal, gracefulCancel, killDelay}, child, channel, killSignal, exited) => {
  const state = new CancelState();
  if (cancelSignal === undefined) {
    return state;
  }
  let timer;
  // The 'exit' event may come before the channel's end of file: an abort from an 'exit' listener is late too.
  const hasExited = () => child.exitCode !== null || child.signalCode !== null;
  const onAbort = () => {
    const reason = cancelSignal.reason;
    if (!gracefulCancel) {
      if (hasExited()) {
        return;
      }
      state.isCanceled = true;
      state.reason = reason;
      child.kill(killSignal);
      return;
    }
    if (!channel.connected || hasExited()) {
      state.error = new Error(`${CANCEL_CALL} cannot be used: the subprocess has already exited or disconnected.`);
      return;
    }
    channel.sendCancel(toSendable(reason)).then(
      () => {
        state.isCanceled = true;
        state.isGracefullyCanceled = true;
        state.reason = reason;
        if (killDelay !== false) {
          timer = setTimeout(() => {
            if (child.exitCode === null && child.signalCode === null) {
              state.killedAfter = killDelay;
              child.kill('SIGKILL');
            }
          }, killDelay);
          timer.unref();
        }
      },
      (error) => {
        state.error = sendFailure(reason, error);
      },
    );
  };
  if (cancelSignal.aborted) {
    queueMicrotask(onAbort);
  } else {
    cancelSignal.addEventListener('abort', onAbort, {once: true});
  }
  exited.then(() => {
    cancelSignal.removeEventListener('abort', onAbort);
    clearTimeout(timer);
  });
  return state;
};

// ---- child side ----

let controller;
let failedOnce = false;

/**
 * The child's AbortSignal for graceful cancellation. `getChannel()` returns the channel or undefined.
 */
const getCancelSignal = async (getChannel) => {
  if (controller !== undefined) {
    return controller.signal;
  }
  const channel = getChannel();
  if (channel === undefined) {
    if (!failedOnce) {
      failedOnce = true;
      throw new Error('`getCancelSignal()` cannot be used without setting the `cancelSignal` subprocess option.');
    }
    // Only the first call fails, as in execa (R57); later ones get a signal that never aborts.
    controller = new AbortController();
    return controller.signal;
  }
  controller = new AbortController();
  const current = controller;
  const disconnected = () => {
    current.abort(new Error('`cancelSignal` aborted: the parent process disconnected.'));
  };
  channel.onCancel = (reason) => current.abort(reason);
  channel.onDisconnect = disconnected;
  if (channel.cancelReason !== undefined) {
    current.abort(channel.cancelReason.reason);
  } else if (channel.ended) {
    disconnected();
  }
  // One macrotask, so that a cancel request already on its way is seen before the signal is handed out.
  await new Promise((resolve) => setImmediate(resolve));
  return current.signal;
};

module.exports = {validateCancelOptions, watchCancel, getCancelSignal};
