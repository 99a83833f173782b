'use strict';

// The value `await subprocess` gives, or the error it rejects with (execa R42-R47, R55).

const util = require('node:util');

// Every character of Unicode's "Separator" and "Other" categories (controls, format characters such as
// zero-width spaces, line separators, non-breaking spaces, unassigned code points) is shown escaped in
// error messages and verbose lines, as execa does: the usual backslash escapes where they exist, else \uXXXX
// (or \U followed by the hex digits above U+FFFF). A plain space is kept, and so is every letter.
const SHOWN_ESCAPED = /\p{Separator}|\p{Other}/gu;
const SHORT_ESCAPES = new Map([
  [' ', ' '],
  ['\b', '\\b'],
  ['\f', '\\f'],
  ['\n', '\\n'],
  ['\r', '\\r'],
  ['\t', '\\t'],
]);
const escapeCharacter = (character) => {
  const short = SHORT_ESCAPES.get(character);
  if (short !== undefined) {
    return short;
  }
  const code = character.codePointAt(0);
  return code > 0xffff ? `\\U${code.toString(16)}` : `\\u${code.toString(16).padStart(4, '0')}`;
};
// ANSI sequences (colors, cursor moves) are removed first.
const escapeLine = (line) => util.stripVTControlCharacters(line).replace(SHOWN_ESCAPED, escapeCharacter);

const renderMessage = (message) => (typeof message === 'string' ? message : util.inspect(message));

/**
 * The messages part at the end of an error message (execa R47): the messages one per line, a string exactly
 * as it is (its own final newline included, except at the very end of the part), then every line escaped.
 */
const ipcPart = (ipcOutput) =>
  ipcOutput
    .map(renderMessage)
    .join('\n')
    .replace(/\r?\n$/, '')
    .split('\n')
    .map(escapeLine)
    .join('\n');

/** What a cancel reason says, escaped, for the line under the short message (as execa does); '' if nothing. */
const reasonText = (reason) => {
  let text;
  try {
    text = String(reason?.message ?? reason);
  } catch {
    text = Object.prototype.toString.call(reason);
  }
  return text.split('\n').map(escapeLine).join('\n');
};

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
    const reason = reasonText(cancel.reason);
    shortMessage = cancelMessage(cancel, exitCode, signal, command) + (reason === '' ? '' : `\n${reason}`);
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
