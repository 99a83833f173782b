// Cancellation through `cancelSignal`, graceful or not, and the child's getCancelSignal() (execa R53–R58).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import childProcess, {execFile} from 'node:child_process';
import {getEventListeners} from 'node:events';
import {text} from 'node:stream/consumers';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import {execaNode} from 'execa';
import {fork, spawn, fixture, settle} from './helpers.mjs';

const execFileAsync = promisify(execFile);
const CANCEL_AFTER_EXIT =
  "`cancelSignal`'s `controller.abort()` cannot be used: the subprocess has already exited or disconnected.";

/**
 * `start()` must throw `expected` before anything is spawned. A valid start afterwards proves that the spy
 * sees spawns at all, so the "nothing spawned" part cannot pass by accident.
 */
const assertRefusedBeforeSpawn = async (t, start, expected) => {
  const spy = t.mock.method(childProcess, 'spawn');
  assert.throws(start, expected);
  assert.equal(spy.mock.callCount(), 0, 'nothing may be spawned for invalid options');
  const result = await fork(fixture('idle.mjs'));
  assert.equal(spy.mock.callCount(), 1);
  assert.deepEqual(result.ipcOutput, ['ready']);
};

test('R53: gracefulCancel without cancelSignal is a synchronous TypeError, nothing is spawned', async (t) => {
  await assertRefusedBeforeSpawn(t, () => fork(fixture('idle.mjs'), [], {gracefulCancel: true}), {
    name: 'TypeError',
    message: /the `cancelSignal` option must be defined when setting the `gracefulCancel` option\.$/,
  });
});

test('R53: gracefulCancel with ipc: false is a synchronous TypeError, nothing is spawned', async (t) => {
  const {signal} = new AbortController();
  const expected = {
    name: 'TypeError',
    message: /the `ipc` option cannot be false when setting the `gracefulCancel` option\.$/,
  };
  await assertRefusedBeforeSpawn(
    t,
    () => spawn(process.execPath, [fileURLToPath(fixture('idle.mjs'))], {ipc: false, cancelSignal: signal, gracefulCancel: true}),
    expected,
  );
  // spawn() without `ipc` has no channel either.
  await assertRefusedBeforeSpawn(
    t,
    () => spawn(process.execPath, [fileURLToPath(fixture('idle.mjs'))], {cancelSignal: signal, gracefulCancel: true}),
    expected,
  );
  await assertRefusedBeforeSpawn(
    t,
    () => fork(fixture('idle.mjs'), [], {ipc: false, cancelSignal: signal, gracefulCancel: true}),
    expected,
  );
});

test("R53: gracefulCancel with serialization: 'json' is a synchronous TypeError, nothing is spawned", async (t) => {
  const {signal} = new AbortController();
  await assertRefusedBeforeSpawn(
    t,
    () => fork(fixture('idle.mjs'), [], {serialization: 'json', cancelSignal: signal, gracefulCancel: true}),
    {name: 'TypeError', message: /the `serialization` option cannot be 'json' when setting the `gracefulCancel` option\.$/},
  );
});

test("R55: graceful cancel aborts the child's signal with the parent's Error; the result is gracefully canceled although the child exits 0", async () => {
  const controller = new AbortController();
  const reason = new Error('stop now');
  const subprocess = fork(fixture('x-cancel-wait.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  assert.equal(getEventListeners(controller.signal, 'abort').length, 1);
  controller.abort(reason);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 0);
  assert.equal(error.signal, undefined);
  assert.equal(error.isCanceled, true);
  assert.equal(error.isGracefullyCanceled, true);
  assert.equal(error.cause, reason);
  assert.match(error.shortMessage, /^Command was gracefully canceled with exit code 0: \S*x-cancel-wait\.mjs\nstop now$/);
  const report = {isError: true, isDOMException: false, name: 'Error', message: 'stop now', sameSignalAgain: true};
  assert.deepEqual(error.ipcOutput, ['ready', report]);
  assert.ok(error.message.startsWith(`${error.shortMessage}\n\nready\n`));
  // The parent's listener on `cancelSignal` is gone once the subprocess is done.
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

test('R54: the default DOMException reason reaches the child as a plain Error with the same message', async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('x-cancel-wait.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  controller.abort();
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.ok(controller.signal.reason instanceof DOMException);
  assert.equal(error.cause, controller.signal.reason);
  assert.equal(error.isGracefullyCanceled, true);
  assert.ok(error.shortMessage.endsWith(`x-cancel-wait.mjs\n${controller.signal.reason.message}`), error.shortMessage);
  assert.deepEqual(error.ipcOutput[1], {
    isError: true,
    isDOMException: false,
    name: 'Error',
    message: controller.signal.reason.message,
    sameSignalAgain: true,
  });
});

test("R55: the child's exit code after a graceful cancel is in the message", async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('x-cancel-wait.mjs'), ['3'], {cancelSignal: controller.signal, gracefulCancel: true});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  controller.abort(new Error('stop with 3'));
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 3);
  assert.equal(error.isCanceled, true);
  assert.equal(error.isGracefullyCanceled, true);
  assert.match(error.shortMessage, /^Command was gracefully canceled with exit code 3: \S*x-cancel-wait\.mjs 3\nstop with 3$/);
});

test('R55: a child that ignores the cancel request is SIGKILLed after forceKillAfterDelay', async () => {
  const controller = new AbortController();
  const reason = new Error('please stop');
  const subprocess = fork(fixture('x-cancel-ignore.mjs'), [], {
    cancelSignal: controller.signal,
    gracefulCancel: true,
    forceKillAfterDelay: 200,
  });
  assert.equal(await subprocess.getOneMessage(), 'ready');
  controller.abort(reason);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.signal, 'SIGKILL');
  assert.equal(error.exitCode, undefined);
  assert.equal(error.isCanceled, true);
  assert.equal(error.isGracefullyCanceled, true);
  assert.equal(error.cause, reason);
  assert.match(
    error.shortMessage,
    /^Command was gracefully canceled and was forcefully terminated after 200 milliseconds: \S*x-cancel-ignore\.mjs\nplease stop$/,
  );
  // The child did get the request: it only chose to ignore it.
  assert.deepEqual(error.ipcOutput, ['ready', 'abort seen, not stopping']);
});

test("R55: the short messages of a canceled subprocess read as execa's for the same child", async () => {
  const cases = [
    ['x-cancel-wait.mjs', ['3'], {gracefulCancel: true}],
    ['x-cancel-ignore.mjs', [], {gracefulCancel: true, forceKillAfterDelay: 200}],
    ['wait-forever.mjs', [], {}],
  ];
  for (const [name, args, options] of cases) {
    const run = async (start) => {
      const controller = new AbortController();
      const subprocess = start(fixture(name), args, {...options, cancelSignal: controller.signal});
      assert.equal(await subprocess.getOneMessage(), 'ready');
      controller.abort(new Error(`stop ${name}`));
      const {ok, error} = await settle(subprocess);
      assert.equal(ok, false);
      return error;
    };
    const [native, viaExeca] = await Promise.all([
      run(fork),
      run((file, list, opts) => execaNode(file, list, {...opts, ipc: true})),
    ]);
    assert.equal(native.shortMessage, viaExeca.shortMessage);
    assert.equal(native.isCanceled, viaExeca.isCanceled);
    assert.equal(native.isGracefullyCanceled, viaExeca.isGracefullyCanceled);
    assert.equal(native.signal, viaExeca.signal);
    assert.equal(native.exitCode, viaExeca.exitCode);
  }
});

test('R54: aborting after the parent disconnected fails the result without canceling; nothing reaches the child', async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('x-cancel-wait.mjs'), ['0', 'stdout'], {
    cancelSignal: controller.signal,
    gracefulCancel: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const output = text(subprocess.stdout);
  assert.equal(await subprocess.getOneMessage(), 'ready');
  subprocess.disconnect();
  controller.abort(new Error('too late'));
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 0);
  assert.equal(error.isCanceled, false);
  assert.equal(error.isGracefullyCanceled, false);
  assert.equal(error.cause?.message, CANCEL_AFTER_EXIT);
  assert.match(error.shortMessage, /cannot be used: the subprocess has already exited or disconnected\./);
  // The child's signal was aborted by the disconnect, not by the late cancel.
  assert.equal(JSON.parse(await output).message, '`cancelSignal` aborted: the parent process disconnected.');
});

test('R54: aborting once the child has exited fails the result with "already exited", not canceled', async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('x-cancel-idle.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
  subprocess.once('exit', () => controller.abort(new Error('after exit')));
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 0);
  assert.equal(error.isCanceled, false);
  assert.equal(error.isGracefullyCanceled, false);
  assert.equal(error.cause?.message, CANCEL_AFTER_EXIT);
  assert.deepEqual(error.ipcOutput, [{hasSignal: true, aborted: false}]);
});

test('R55: a cancelSignal without gracefulCancel aborted once the child has exited cancels nothing', async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('idle.mjs'), [], {cancelSignal: controller.signal});
  subprocess.once('exit', () => controller.abort(new Error('after exit')));
  const result = await subprocess;
  assert.equal(result.exitCode, 0);
  assert.equal(result.isCanceled, false);
  assert.deepEqual(result.ipcOutput, ['ready']);
});

test('R54, R60: a reason that cannot be sent fails the result, not canceled; the channel stays open', async () => {
  const unprintable = {
    [Symbol.toPrimitive]() {
      throw new Error('cannot be printed');
    },
    method() {},
  };
  for (const [reason, printed] of [
    [() => {}, '() => {}'],
    [unprintable, '[object Object]'],
  ]) {
    const controller = new AbortController();
    const subprocess = fork(fixture('x-cancel-listen.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
    assert.equal(await subprocess.getOneMessage(), 'ready');
    controller.abort(reason);
    assert.equal(subprocess.connected, true);
    await subprocess.sendMessage('a');
    await subprocess.sendMessage('b');
    const {ok, error} = await settle(subprocess);
    assert.equal(ok, false);
    assert.equal(error.exitCode, 0);
    assert.equal(error.isCanceled, false);
    assert.equal(error.isGracefullyCanceled, false);
    assert.equal(error.cause.name, 'TypeError');
    assert.ok(
      error.cause.message.startsWith(
        `\`cancelSignal\`'s \`controller.abort()\`'s argument type is invalid: the message cannot be serialized: ${printed}.`,
      ),
      error.cause.message,
    );
    // The child never saw a cancel request, and kept receiving.
    assert.deepEqual(error.ipcOutput, ['ready', {one: 'a', each: ['a', 'b'], aborted: false, reason: undefined}]);
  }
});

test('R54: a cancelSignal already aborted at spawn is delivered to the child', async () => {
  const reason = new Error('aborted before the start');
  const subprocess = fork(fixture('x-cancel-wait.mjs'), [], {cancelSignal: AbortSignal.abort(reason), gracefulCancel: true});
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.isCanceled, true);
  assert.equal(error.isGracefullyCanceled, true);
  assert.equal(error.cause, reason);
  assert.equal(error.exitCode, 0);
  assert.deepEqual(error.ipcOutput, [
    'ready',
    {isError: true, isDOMException: false, name: 'Error', message: 'aborted before the start', sameSignalAgain: true},
  ]);
});

test('R55: a cancelSignal without gracefulCancel kills the subprocess with SIGTERM', async () => {
  const controller = new AbortController();
  const reason = new Error('kill it');
  const subprocess = fork(fixture('wait-forever.mjs'), [], {cancelSignal: controller.signal});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  controller.abort(reason);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.signal, 'SIGTERM');
  assert.equal(error.isCanceled, true);
  assert.equal(error.isGracefullyCanceled, false);
  assert.equal(error.cause, reason);
  assert.match(error.shortMessage, /^Command was canceled: \S*wait-forever\.mjs\nkill it$/);
  assert.deepEqual(error.ipcOutput, ['ready']);
});

test('R55: a cancelSignal without a channel (spawn) kills with SIGTERM, also when aborted before the start', async () => {
  const script = 'setInterval(() => {}, 60_000)';
  for (const aborted of [false, true]) {
    const controller = new AbortController();
    if (aborted) {
      controller.abort();
    }
    const subprocess = spawn(process.execPath, ['-e', script], {cancelSignal: controller.signal, stdio: 'ignore'});
    controller.abort();
    const {ok, error} = await settle(subprocess);
    assert.equal(ok, false);
    assert.equal(error.signal, 'SIGTERM');
    assert.equal(error.isCanceled, true);
    assert.equal(error.isGracefullyCanceled, false);
    assert.deepEqual(error.ipcOutput, []);
  }
});

test('R57: getCancelSignal() in a process without any channel rejects on the first call only', async () => {
  const {stdout} = await execFileAsync(process.execPath, [fileURLToPath(fixture('x-cancel-no-channel.mjs'))]);
  const {calls, sameSignal} = JSON.parse(stdout);
  assert.deepEqual(calls, [
    {ok: false, message: '`getCancelSignal()` cannot be used without setting the `cancelSignal` subprocess option.'},
    {ok: true, isSignal: true, aborted: false},
    {ok: true, isSignal: true, aborted: false},
  ]);
  assert.equal(sameSignal, true);
});

test("R56: the child's signal aborts with an Error when the parent disconnects (no cancel options needed)", async () => {
  const subprocess = fork(fixture('x-cancel-wait.mjs'), ['0', 'stdout'], {stdio: ['ignore', 'pipe', 'inherit']});
  const output = text(subprocess.stdout);
  assert.equal(await subprocess.getOneMessage(), 'ready');
  subprocess.disconnect();
  const result = await subprocess;
  assert.equal(result.exitCode, 0);
  assert.deepEqual(JSON.parse(await output), {
    isError: true,
    isDOMException: false,
    name: 'Error',
    message: '`cancelSignal` aborted: the parent process disconnected.',
    sameSignalAgain: true,
  });
});

test("R58 fixed: a grandchild's channel ending, or its cancel-shaped message, does not abort the child's signal", async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('x-cancel-grandchild.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
  const [report] = (await subprocess).ipcOutput;
  assert.equal(report.grandchildExitCode, 0);
  assert.equal(report.grandchildConnected, false);
  assert.equal(report.fromGrandchild.type, 'execa:ipc:cancel');
  assert.equal(report.fromGrandchild.message.message, 'from the grandchild');
  assert.equal(report.grandchildOutput.length, 1);
  assert.equal(report.aborted, false);
  assert.equal(report.reason, null);
});

test('R56: getCancelSignal() does not keep the child alive', {timeout: 30_000}, async () => {
  const controller = new AbortController();
  const result = await fork(fixture('x-cancel-idle.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
  assert.equal(result.exitCode, 0);
  assert.equal(result.isCanceled, false);
  assert.deepEqual(result.ipcOutput, [{hasSignal: true, aborted: false}]);
});

test('R56: a cancel request that arrived before the first getCancelSignal() call aborts the signal it returns', async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('x-cancel-late.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  controller.abort(new Error('early cancel'));
  await subprocess.sendMessage('after the cancel');
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.isGracefullyCanceled, true);
  assert.deepEqual(error.ipcOutput, ['ready', {message: 'after the cancel', aborted: true, reason: 'early cancel'}]);
});

test('R56, R38: a cancel request never shows up in getOneMessage(), getEachMessage() or ipcOutput', async () => {
  const controller = new AbortController();
  const subprocess = fork(fixture('x-cancel-listen.mjs'), [], {cancelSignal: controller.signal, gracefulCancel: true});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  controller.abort(new Error('cancel among messages'));
  await subprocess.sendMessage('a');
  await subprocess.sendMessage('b');
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.isGracefullyCanceled, true);
  assert.deepEqual(error.ipcOutput, [
    'ready',
    {one: 'a', each: ['a', 'b'], aborted: true, reason: 'cancel among messages'},
  ]);
});
