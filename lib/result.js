'use strict';

// The value `await subprocess` gives, or the error it rejects with (execa R42–R47, R55).

const util = require('node:util');

// Control and separator characters are shown escaped in error messages; spaces and letters are kept.
const escapeLine = (line) =>
  util
    .stripVTControlCharacters(line)
    .replace(/[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\t/g, '\\t');

const renderMessage = (message) => (typeof message === 'string' ? message : util.inspect(message));

/** The messages part at the end of an error message (execa R47). */
const ipcPart = (ipcOutput) =>
  ipcOutput
    .map((message) => renderMessage(message).replace(/\n$/, '').split('\n').map(escapeLine).join('\n'))
    .join('\n');

const cancelMessage = (cancel, exitCode, signal, command) => {
  if (!cancel.isGracefullyCanceled) {
    return `Command was canceled: ${command}`;
  }
  if (cancel.killedAfter !== undefined) {
    return `Command was gracefully canceled and was forcefully terminated after ${cancel.killedAfter} milliseconds: ${command}`;
  }
  return signal
    ? `Command was gracefully canceled with ${signal}: ${command}`
    : `Command was gracefully canceled with exit code ${exitCode}: ${command}`;
};

/**
 * @param {object} facts what happened: the exit, the channel's end, and the failures seen on the way
 * @returns the result object, or throws the failure
 */
const buildResult = ({command, pid, exit, channelError, inputError, maxBufferError, cancel, ipcOutput, buffer}) => {
  const {exitCode, signal, error: spawnError} = exit;
  const base = {
    command,
    pid,
    exitCode: exitCode ?? undefined,
    signal: signal ?? undefined,
    ipcOutput,
    isMaxBuffer: maxBufferError !== undefined,
    isCanceled: cancel.isCanceled,
    isGracefullyCanceled: cancel.isGracefullyCanceled,
  };
  const cause =
    spawnError ?? cancel.error ?? (cancel.isCanceled ? cancel.reason : undefined) ?? maxBufferError ?? channelError ?? inputError;
  if (cause === undefined && !cancel.isCanceled && exitCode === 0) {
    return {...base, failed: false};
  }
  let shortMessage;
  if (spawnError !== undefined) {
    shortMessage = `Command failed: ${command}\n${spawnError.message}`;
  } else if (cancel.isCanceled) {
    shortMessage = cancelMessage(cancel, exitCode, signal, command);
  } else if (maxBufferError !== undefined) {
    shortMessage = maxBufferError.message;
  } else if (signal) {
    shortMessage = `Command was killed with ${signal}: ${command}`;
  } else if (exitCode !== 0) {
    shortMessage = `Command failed with exit code ${exitCode}: ${command}`;
  } else {
    shortMessage = `Command failed: ${command}\n${cause.message}`;
  }
  const ipcText = buffer ? ipcPart(ipcOutput) : '';
  const failure = new Error(ipcText === '' ? shortMessage : `${shortMessage}\n\n${ipcText}`, cause === undefined ? undefined : {cause});
  Object.assign(failure, base, {shortMessage, failed: true});
  throw failure;
};

module.exports = {buildResult, renderMessage, escapeLine};
