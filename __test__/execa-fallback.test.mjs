// The child-side API falls back to Node's own channel, so one child script works under native-ipc's fork(),
// Node's child_process.fork() and execa (API.md "Child side"); without any channel it fails clearly.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import childProcess, {execFile} from 'node:child_process';
import {once} from 'node:events';
import {text} from 'node:stream/consumers';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';
import {execaNode} from 'execa';
import {fork, fixture, settle} from './helpers.mjs';

const execFileAsync = promisify(execFile);
const CHILD = fixture('x-fallback-child.mjs');
// A hang (a lost message, a child kept alive) fails the test instead of blocking the suite.
const LIMIT = {timeout: 30_000};

const REPORT = {received: ['one', {two: [2]}], waitingForCancel: true};

test('fallback (a): the child script under native-ipc fork(), with strict sends both ways and graceful cancel', LIMIT, async () => {
  const controller = new AbortController();
  const subprocess = fork(CHILD, [], {ipcInput: 'hello', cancelSignal: controller.signal, gracefulCancel: true});
  assert.deepEqual(await subprocess.getOneMessage(), {first: 'hello'});
  assert.equal(await subprocess.getOneMessage(), 'strict from child');
  await subprocess.sendMessage('one');
  await subprocess.sendMessage({two: [2]}, {strict: true});
  await subprocess.sendMessage('end');
  assert.deepEqual(await subprocess.getOneMessage(), REPORT);
  const reason = new Error('stop please');
  controller.abort(reason);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 0);
  assert.equal(error.isGracefullyCanceled, true);
  assert.equal(error.cause, reason);
  assert.deepEqual(error.ipcOutput, [{first: 'hello'}, 'strict from child', REPORT, {canceled: 'stop please'}]);
});

/** The messages of a Node ChildProcess, one at a time, none lost between calls; rejects once the child exited. */
const inbox = (child) => {
  const queued = [];
  const waiting = [];
  let exit;
  child.on('message', (message) => {
    if (waiting.length > 0) {
      waiting.shift().resolve(message);
    } else {
      queued.push(message);
    }
  });
  child.once('exit', (code, signal) => {
    exit = new Error(`the child exited (${code ?? signal}) before sending the expected message`);
    for (const {reject} of waiting.splice(0)) {
      reject(exit);
    }
  });
  return () => {
    if (queued.length > 0) {
      return Promise.resolve(queued.shift());
    }
    if (exit !== undefined) {
      return Promise.reject(exit);
    }
    return new Promise((resolve, reject) => waiting.push({resolve, reject}));
  };
};

for (const serialization of ['advanced', 'json']) {
  test(`fallback (b): the child script under child_process.fork() with serialization '${serialization}'`, LIMIT, async () => {
    const child = childProcess.fork(fileURLToPath(CHILD), [], {serialization});
    const exited = once(child, 'exit');
    const next = inbox(child);
    const send = (message) => new Promise((resolve, reject) => child.send(message, (error) => (error ? reject(error) : resolve())));

    await send('hello');
    assert.deepEqual(await next(), {first: 'hello'});

    // The child's strict message comes wrapped, as execa's are; the acknowledgement lets its send resolve.
    const request = await next();
    assert.equal(request.type, 'execa:ipc:request');
    assert.equal(request.message, 'strict from child');
    await send({id: request.id, type: 'execa:ipc:response', message: true});

    await send('one');
    // A strict message to the child, the way execa sends it (an id of 0 too): the child acknowledges it as
    // listening.
    await send({id: 0, type: 'execa:ipc:request', message: {two: [2]}, hasListeners: false});
    assert.deepEqual(await next(), {id: 0, type: 'execa:ipc:response', message: true});
    await send('end');
    assert.deepEqual(await next(), REPORT);

    // execa's cancel request (an Error does not survive JSON, so json mode sends a string reason).
    await send({type: 'execa:ipc:cancel', message: serialization === 'json' ? 'stop please' : new Error('stop please')});
    assert.deepEqual(await next(), {canceled: 'stop please'});
    const [exitCode] = await exited;
    assert.equal(exitCode, 0);
  });
}

test("fallback (b): under child_process.fork(), the child's cancel signal aborts when the parent disconnects", LIMIT, async () => {
  const child = childProcess.fork(fileURLToPath(fixture('x-cancel-wait.mjs')), ['0', 'stdout'], {
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const output = text(child.stdout);
  const exited = once(child, 'exit');
  const [ready] = await once(child, 'message');
  assert.equal(ready, 'ready');
  child.disconnect();
  assert.deepEqual(await exited, [0, null]);
  const report = JSON.parse(await output);
  assert.equal(report.isError, true);
  assert.equal(report.message, '`cancelSignal` aborted: the parent process disconnected.');
});

test("fallback (c): the child script under execa's execaNode(), with strict sends both ways and gracefulCancel", LIMIT, async () => {
  const controller = new AbortController();
  const subprocess = execaNode(CHILD, [], {ipc: true, ipcInput: 'hello', cancelSignal: controller.signal, gracefulCancel: true});
  assert.deepEqual(await subprocess.getOneMessage(), {first: 'hello'});
  assert.equal(await subprocess.getOneMessage(), 'strict from child');
  await subprocess.sendMessage('one');
  await subprocess.sendMessage({two: [2]}, {strict: true});
  await subprocess.sendMessage('end');
  assert.deepEqual(await subprocess.getOneMessage(), REPORT);
  const reason = new Error('stop please');
  controller.abort(reason);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false, 'a graceful cancel fails the result');
  assert.equal(error.exitCode, 0);
  assert.equal(error.isCanceled, true);
  assert.equal(error.isGracefullyCanceled, true);
  assert.equal(error.cause, reason);
  assert.deepEqual(error.ipcOutput, [{first: 'hello'}, 'strict from child', REPORT, {canceled: 'stop please'}]);
});

test('fallback: the same child script started with no channel at all fails with the clear error', async () => {
  const {ok, error} = await settle(execFileAsync(process.execPath, [fileURLToPath(CHILD)]));
  assert.equal(ok, false);
  assert.equal(error.code, 1);
  assert.ok(
    error.stderr.includes(
      "getOneMessage() can only be used if the `ipc` option is `true`: start this process with native-ipc's fork(), or spawn(file, args, {ipc: true}).",
    ),
    error.stderr,
  );
});
