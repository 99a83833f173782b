'use strict';

// The parent side: fork()/spawn() start the child with one end of a Rust socketpair as an inherited
// descriptor, and turn Node's ChildProcess into execa's subprocess: the three IPC methods, and a promise of
// the result that settles once the child exited and the channel closed.

const childProcess = require('node:child_process');
const path = require('node:path');
const {fileURLToPath} = require('node:url');
const fs = require('node:fs');

const {createSocketpair, closeFd} = require('./load.js').binding();
const {Channel, DEFAULT_MAX_MESSAGE_SIZE} = require('./channel.js');
const {ipcMethods} = require('./methods.js');
const codec = require('./codec.js');
const errors = require('./errors.js');
const {ENV_NAME} = require('./child.js');
const {validateCancelOptions, watchCancel} = require('./cancel.js');
const {buildResult, renderMessage, escapeLine} = require('./result.js');
const validate = require('./validate.js');
const {nodeSend} = require('./node-style.js');
const {reviveHandle, dropHandle} = require('./handles.js');

// Every child that fork() starts loads lib/load.js before the user's script runs, and adopts the channel there
// (see the end of load.js): with `--require`, or through the package's index.mjs with `--import` when the script
// is an ES module (see there).
const {preloadFlags: ownPreloadFlags, isOwnPreload} = require('./load.js');
const OWN_OPTIONS = [
  'ipc',
  'serialization',
  'ipcInput',
  'buffer',
  'maxBuffer',
  'verbose',
  'maxMessageSize',
  'cancelSignal',
  'gracefulCancel',
  'forceKillAfterDelay',
];
const DEFAULT_MAX_BUFFER = 100_000_000;
const MAX_FRAME = 2 ** 32 - 1;

const toPath = (call, name, value) => {
  if (value instanceof URL) {
    return fileURLToPath(value);
  }
  if (typeof value !== 'string' || value === '') {
    throw validate.fail(call, `\`${name}\` must be a non-empty string or a file URL, not ${validate.describe(value)}.`);
  }
  return value;
};

/** Accepts (file, options) as well as (file, args, options), as child_process does. */
const splitArguments = (call, args, options) => {
  if (args !== undefined && args !== null && !Array.isArray(args)) {
    if (options !== undefined) {
      throw validate.fail(call, `\`args\` must be an array of strings, not ${validate.describe(args)}.`);
    }
    return [[], args];
  }
  const list = args ?? [];
  for (const arg of list) {
    if (typeof arg !== 'string') {
      throw validate.fail(call, `every item of \`args\` must be a string, not ${validate.describe(arg)}.`);
    }
  }
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw validate.fail(call, `its options must be an object, not ${validate.describe(options)}.`);
  }
  return [list, options ?? {}];
};

const isIpcStdio = (value) =>
  value === 'ipc' ||
  (Array.isArray(value) && value.some((item) => isIpcStdio(item))) ||
  (value !== null && typeof value === 'object' && !Array.isArray(value) && value.value === 'ipc');

const rejectIpcStdio = (call, options) => {
  for (const name of ['stdio', 'stdin', 'stdout', 'stderr']) {
    if (isIpcStdio(options[name])) {
      throw validate.fail(
        call,
        `\`${name}: 'ipc'\` cannot be used: native-ipc opens its own channel. Use the \`ipc: true\` option instead.`,
      );
    }
  }
};

const normalizeStdio = (stdio, fallback) => {
  if (stdio === undefined) {
    return [fallback, fallback, fallback];
  }
  if (typeof stdio === 'string') {
    return [stdio, stdio, stdio];
  }
  if (!Array.isArray(stdio)) {
    return stdio;
  }
  const list = [...stdio];
  while (list.length < 3) {
    list.push(fallback);
  }
  return list;
};

const validateOptions = (call, options, ipcDefault) => {
  rejectIpcStdio(call, options);
  const ipcOption = options.ipc;
  if (ipcOption !== undefined && typeof ipcOption !== 'boolean' && typeof ipcOption !== 'function') {
    throw validate.fail(call, `the \`ipc\` option must be a boolean or a function, not ${validate.describe(ipcOption)}.`);
  }
  const ipc = ipcOption === undefined ? ipcDefault : Boolean(ipcOption);
  const serialization = options.serialization ?? 'advanced';
  if (serialization !== 'advanced' && serialization !== 'json') {
    throw validate.fail(call, `the \`serialization\` option must be 'advanced' or 'json', not ${validate.describe(serialization)}.`);
  }
  const buffer = validate.checkBoolean(call, 'buffer', options.buffer, true);
  const maxBuffer = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  if (!Number.isInteger(maxBuffer) || maxBuffer < 0) {
    throw validate.fail(call, `the \`maxBuffer\` option must be a non-negative integer (a number of messages), not ${validate.describe(maxBuffer)}.`);
  }
  const maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  if (!Number.isInteger(maxMessageSize) || maxMessageSize < 1 || maxMessageSize > MAX_FRAME - 4) {
    throw validate.fail(call, `the \`maxMessageSize\` option must be an integer from 1 to ${MAX_FRAME - 4} (bytes), not ${validate.describe(maxMessageSize)}.`);
  }
  const verbose = options.verbose ?? 'none';
  if (!['none', 'short', 'full'].includes(verbose)) {
    throw validate.fail(call, `the \`verbose\` option must be 'none', 'short' or 'full', not ${validate.describe(verbose)}.`);
  }
  if (options.ipcInput !== undefined) {
    if (!ipc) {
      throw validate.fail(call, 'the `ipcInput` option cannot be set unless the `ipc` option is `true`.');
    }
    checkSerializable(call, options.ipcInput, serialization);
  }
  const cancel = validateCancelOptions(call, options, ipc, serialization);
  return {ipc, ipcCallback: typeof ipcOption === 'function' ? ipcOption : undefined, serialization, buffer, maxBuffer, maxMessageSize, verbose, cancel};
};

const checkSerializable = (call, value, serialization) => {
  const writer = new codec.Writer(256);
  try {
    if (serialization === 'json') {
      codec.encodeJson(writer, value);
    } else {
      codec.encodeAdvanced(writer, value);
    }
  } catch (cause) {
    const error = validate.fail(
      call,
      `the \`ipcInput\` option is not serializable with ${serialization === 'json' ? 'JSON' : 'a structured clone'}: ${cause.message}`,
    );
    error.cause = cause;
    throw error;
  }
};

const spawnOptionsOf = (options) => {
  const rest = {...options};
  for (const name of OWN_OPTIONS) {
    delete rest[name];
  }
  return rest;
};

const EVAL_FLAGS = new Set(['-e', '--eval', '-p', '--print', '-pe']);

// directory -> whether the nearest package.json there says "type": "module"
const moduleScopes = new Map();
/** Whether the package scope of `directory` is "type": "module", as Node decides it for a .js entry. */
const isModuleScope = (directory) => {
  const visited = [];
  let scope = false;
  for (let dir = directory; ; ) {
    const known = moduleScopes.get(dir);
    if (known !== undefined) {
      scope = known;
      break;
    }
    visited.push(dir);
    // Node looks no further than a node_modules directory, and not into its package.json either.
    if (dir.endsWith(`${path.sep}node_modules`)) {
      break;
    }
    let text;
    try {
      text = fs.readFileSync(path.join(dir, 'package.json'), 'utf8');
    } catch {}
    if (text !== undefined) {
      try {
        scope = JSON.parse(text)?.type === 'module';
      } catch {}
      break;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      break;
    }
    dir = parent;
  }
  for (const dir of visited) {
    moduleScopes.set(dir, scope);
  }
  return scope;
};

/**
 * How a child loads the preload: `--import` (index.mjs) when its script is an ES module and it runs this
 * very Node (which has process.getBuiltinModule, from 20.16), `--require` otherwise. Either works for any
 * script; the choice only saves a child work.
 */
const preloadFlags = (file, execPath, cwd) => {
  const esm =
    execPath === process.execPath &&
    typeof process.getBuiltinModule === 'function' &&
    (file.endsWith('.mjs') || (file.endsWith('.js') && isModuleScope(path.dirname(path.resolve(directoryOf(cwd), file)))));
  return ownPreloadFlags(esm);
};
/** The `cwd` option as a path; '' (this process's) when it is not a valid one, which spawn() then reports. */
const directoryOf = (cwd) => {
  try {
    return cwd instanceof URL ? fileURLToPath(cwd) : typeof cwd === 'string' ? cwd : '';
  } catch {
    return '';
  }
};

/**
 * The parent's Node.js flags, without the code of `node -e`/`-p`: a child that inherited them would run
 * the parent's code again instead of its script, and fork again (as Node's own fork() avoids too). Nor
 * `--input-type`, which says how to read that code: Node refuses it beside a script that is an ES module
 * (ERR_INPUT_TYPE_NOT_ALLOWED, which Node's own fork() runs into).
 */
const inheritedExecArgv = () => {
  const flags = [];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    if (EVAL_FLAGS.has(argv[i]) || argv[i] === '--input-type' || isOwnPreload(argv[i], argv[i + 1])) {
      i++;
    } else if (!/^--(eval|print|input-type)=/.test(argv[i])) {
      flags.push(argv[i]);
    }
  }
  return flags;
};

/**
 * Runs a Node.js file with the channel open (like child_process.fork / execa's execaNode).
 * @returns the subprocess: a ChildProcess with the IPC methods, and a promise of its result.
 */
const fork = (scriptPath, args, options) => {
  const file = toPath('fork()', 'scriptPath', scriptPath);
  const [list, opts] = splitArguments('fork()', args, options);
  const execPath = opts.execPath ?? process.execPath;
  const execArgv = opts.execArgv ?? inheritedExecArgv();
  const settings = validateOptions('fork()', opts, true);
  const preload = settings.ipc ? preloadFlags(file, execPath, opts.cwd) : [];
  const spawnOptions = spawnOptionsOf(opts);
  delete spawnOptions.execPath;
  delete spawnOptions.execArgv;
  const command = [file, ...list].join(' ');
  return start('fork()', execPath, [...execArgv, ...preload, file, ...list], spawnOptions, settings, 'inherit', opts, command);
};

/** Runs any executable; the channel is opened only with `ipc: true` (or an `ipc` callback). */
const spawn = (file, args, options) => {
  const command = toPath('spawn()', 'file', file);
  const [list, opts] = splitArguments('spawn()', args, options);
  const settings = validateOptions('spawn()', opts, false);
  return start('spawn()', command, list, spawnOptionsOf(opts), settings, 'pipe', opts, [command, ...list].join(' '));
};

const start = (call, file, args, spawnOptions, settings, stdioDefault, userOptions, command) => {
  if (!settings.ipc) {
    const child = childProcess.spawn(file, args, {...spawnOptions, stdio: normalizeStdio(spawnOptions.stdio, stdioDefault)});
    return decorate(child, undefined, settings, command, userOptions);
  }
  const [parentFd, childFd] = createSocketpair();
  const stdio = normalizeStdio(spawnOptions.stdio, stdioDefault);
  if (!Array.isArray(stdio)) {
    closeFd(parentFd);
    closeFd(childFd);
    throw validate.fail(call, `the \`stdio\` option must be a string or an array, not ${validate.describe(stdio)}.`);
  }
  const channelIndex = stdio.length;
  const env = {
    ...(spawnOptions.env ?? process.env),
    [ENV_NAME]: `${channelIndex}:${settings.serialization}:${settings.maxMessageSize}`,
  };
  let child;
  try {
    child = childProcess.spawn(file, args, {...spawnOptions, stdio: [...stdio, childFd], env});
  } catch (error) {
    closeFd(parentFd);
    closeFd(childFd);
    throw error;
  }
  // The child has its copy; without ours, the child's exit reads as end-of-file.
  closeFd(childFd);
  const channel = new Channel(parentFd, {
    serialization: settings.serialization,
    maxMessageSize: settings.maxMessageSize,
    isParent: true,
  });
  trackForExit(channel);
  return decorate(child, channel, settings, command, userOptions);
};

// Channels of this process's subprocesses that are still open: at exit, what they queued goes to the
// kernel first (bounded wait), so a message passed to sendMessage() right before process.exit() arrives.
const openChannels = new Set();
const EXIT_FLUSH_MS = 2000;
const flushAtExit = () => {
  for (const channel of openChannels) {
    channel.flushAtExit(EXIT_FLUSH_MS);
  }
};
const trackForExit = (channel) => {
  if (openChannels.size === 0) {
    process.on('exit', flushAtExit);
  }
  openChannels.add(channel);
  channel.onClosed(() => {
    openChannels.delete(channel);
    if (openChannels.size === 0) {
      process.off('exit', flushAtExit);
    }
  });
};

const decorate = (child, channel, settings, command, userOptions) => {
  const ipcOutput = [];
  let maxBufferError;

  const getChannel = (name) => {
    if (channel === undefined) {
      throw errors.notEnabled('subprocess.', name);
    }
    return channel;
  };

  if (channel !== undefined) {
    // The collector listens when it buffers; Node-style 'message' listeners listen too.
    channel.collectorListens = () => settings.buffer || child.listenerCount('message') > 0;
    channel.collectorActive = () =>
      channel.collectorListens() || settings.verbose === 'full' || settings.ipcCallback !== undefined;
    let disconnectEmitted = false;
    const emitDisconnect = () => {
      if (!disconnectEmitted) {
        disconnectEmitted = true;
        child.emit('disconnect');
      }
    };
    channel.endCallbacks.push(() => process.nextTick(emitDisconnect));
    // The child's last messages and the channel's end come before 'exit', as with Node's channel: once
    // the child is gone everything it sent is in the socket, so it is read before 'exit' is emitted.
    const nodeEmit = child.emit;
    child.emit = function (name, ...args) {
      if (name === 'exit') {
        channel.readNow();
        if (channel.ended) {
          emitDisconnect();
        }
      }
      return nodeEmit.call(this, name, ...args);
    };
    channel.collector = (message, handle) => {
      if (settings.buffer && maxBufferError === undefined) {
        if (ipcOutput.length === settings.maxBuffer) {
          maxBufferError = new Error(`Command's IPC output was larger than ${settings.maxBuffer} messages: ${command}\nmaxBuffer exceeded`);
          maxBufferError.code = 'ERR_IPC_MAX_BUFFER';
          queueMicrotask(() => channel.disconnect());
        } else {
          ipcOutput.push(message);
        }
      }
      if (settings.verbose === 'full') {
        printVerbose(child.pid, message);
      }
      // User callbacks that throw become uncaught exceptions, as with Node, without losing the rest of
      // the batch being read.
      try {
        if (settings.ipcCallback !== undefined) {
          settings.ipcCallback(message, child);
        }
        if (child.listenerCount('message') > 0) {
          child.emit('message', message, handle === undefined ? undefined : reviveHandle(handle));
        } else if (handle !== undefined) {
          dropHandle(handle);
        }
      } catch (error) {
        process.nextTick(() => {
          throw error;
        });
      }
    };
  }

  const exited = new Promise((resolve) => {
    let spawnError;
    child.once('error', (error) => {
      spawnError ??= error;
      // A spawn failure emits no 'exit'.
      if (child.pid === undefined) {
        resolve({error: spawnError});
      }
    });
    child.once('exit', (exitCode, signal) => resolve({exitCode, signal, error: spawnError}));
  });
  const channelClosed =
    channel === undefined ? Promise.resolve(undefined) : new Promise((resolve) => channel.onClosed(resolve));
  const ipcInputSent =
    channel !== undefined && userOptions.ipcInput !== undefined
      ? channel.send(userOptions.ipcInput, false).then(
          () => undefined,
          (error) => error,
        )
      : Promise.resolve(undefined);

  const cancel = watchCancel(settings.cancel, child, channel, userOptions.killSignal ?? 'SIGTERM', exited);
  const result = Promise.all([exited, channelClosed, ipcInputSent]).then(([exit, channelError, inputError]) =>
    buildResult({
      command,
      pid: child.pid,
      exit,
      channelError,
      inputError,
      maxBufferError,
      cancel,
      ipcOutput,
      buffer: settings.buffer,
    }),
  );
  // A subprocess nobody awaits must not crash the parent with an unhandled rejection.
  result.catch(() => {});

  const {sendMessage, getOneMessage, getEachMessage} = ipcMethods({
    prefix: 'subprocess.',
    getChannel,
    // However the parent's loop ends, it disconnects and waits for the subprocess, rethrowing its failure.
    onLoopEnd: async (current) => {
      current.disconnect();
      await result;
    },
  });

  const nodeUnref = child.unref;
  const nodeRef = child.ref;
  if (channel !== undefined) {
    // Node's own ChildProcess only has these with its channel; native-ipc's channel takes their place.
    child.connected = channel.connected;
    channel.connectedMirror = child;
    child.disconnect = () => channel.disconnect();
    child.send = (message, sendHandle, options, callback) =>
      nodeSend('subprocess.send()', channel, (error) => child.emit('error', error), message, sendHandle, options, callback);
  }
  Object.assign(child, {
    sendMessage,
    getOneMessage,
    getEachMessage,
    unref() {
      nodeUnref.call(this);
      channel?.setBaseRef(false);
    },
    ref() {
      nodeRef.call(this);
      channel?.setBaseRef(true);
    },
    then: (onFulfilled, onRejected) => result.then(onFulfilled, onRejected),
    catch: (onRejected) => result.catch(onRejected),
    finally: (onFinally) => result.finally(onFinally),
  });
  return child;
};

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** `verbose: 'full'`: each message from the child, line by line, on stderr (execa R51-R52). */
const printVerbose = (id, message) => {
  const now = new Date();
  const time = `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds(), 3)}`;
  for (const line of renderMessage(message).split('\n')) {
    console.warn(`[${time}] [${id}] * ${escapeLine(line)}`);
  }
};

module.exports = {fork, spawn};
