// Bad input gets a clear error: never a crash, a hang or a lost message.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import {fork, spawn, fixture, settle} from './helpers.mjs';

test('child-side methods in a process without a channel say how to start it', () => {
  const output = execFileSync(process.execPath, [fileURLToPath(fixture('no-channel.cjs'))]);
  const messages = JSON.parse(output);
  assert.equal(messages.length, 3);
  for (const [i, name] of ['sendMessage', 'getOneMessage', 'getEachMessage'].entries()) {
    assert.equal(
      messages[i],
      `${name}() can only be used if the \`ipc\` option is \`true\`: start this process with native-ipc's fork(), or spawn(file, args, {ipc: true}).`,
    );
  }
});

test("stdio: 'ipc' in any form is a TypeError", () => {
  for (const options of [
    {stdio: 'ipc'},
    {stdio: ['pipe', 'pipe', 'pipe', 'ipc']},
    {stdio: ['pipe', ['ipc'], 'pipe']},
    {stdout: 'ipc'},
    {stdio: [{value: 'ipc'}, 'pipe', 'pipe']},
  ]) {
    assert.throws(() => fork(fixture('idle.mjs'), [], options), {
      name: 'TypeError',
      message: /`(stdio|stdout): 'ipc'` cannot be used: native-ipc opens its own channel. Use the `ipc: true` option instead./,
    });
  }
});

test('a message above maxMessageSize rejects before anything is sent; the channel stays usable', async () => {
  const subprocess = fork(fixture('echo.mjs'), [], {maxMessageSize: 1024});
  await assert.rejects(subprocess.sendMessage('x'.repeat(2000)), {
    name: 'RangeError',
    code: 'ERR_IPC_MESSAGE_TOO_LARGE',
    message: /subprocess\.sendMessage\(\)'s argument is too large: it encodes to 200\d bytes, above the `maxMessageSize` of 1024 bytes/,
  });
  // A large binary is kept out of the coalescing buffer (an external part): refusing it must drop it too.
  await assert.rejects(subprocess.sendMessage({data: Buffer.alloc(100_000)}), {code: 'ERR_IPC_MESSAGE_TOO_LARGE'});
  const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage('small')]);
  assert.equal(reply, 'small');
  subprocess.disconnect();
  const {ipcOutput} = await subprocess;
  assert.deepEqual(ipcOutput, ['small']);
});

test('a frame from the peer that does not parse closes the channel with a clear error on every pending call', async () => {
  // A message frame (kind 2) whose MessagePack payload is the reserved byte 0xc1.
  const subprocess = spawn(process.execPath, [fileURLToPath(fixture('raw-peer.cjs')), '0100000002c1'], {ipc: true, stdio: 'inherit'});
  const pending = [subprocess.getOneMessage(), subprocess.getOneMessage({filter: () => true})];
  for (const result of await Promise.allSettled(pending)) {
    assert.equal(result.status, 'rejected');
    assert.match(result.reason.message, /^The IPC channel with the subprocess failed: /);
  }
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.match(error.message, /The IPC channel with the subprocess failed/);
});

for (const [name, hex, expected] of [
  ['an unknown frame kind', '00000000ff', /unknown kind 255/],
  ['a length prefix of 4 GiB', 'ffffffff02', /above the limit/],
]) {
  test(`${name} from the peer closes the channel with a clear error`, async () => {
    const subprocess = spawn(process.execPath, [fileURLToPath(fixture('raw-peer.cjs')), hex], {ipc: true, stdio: 'inherit'});
    await assert.rejects(subprocess.getOneMessage(), expected);
    const {ok, error} = await settle(subprocess);
    assert.equal(ok, false);
    assert.match(error.cause.message, expected);
  });
}

test('invalid options are synchronous TypeErrors naming the option', () => {
  assert.throws(() => fork(fixture('idle.mjs'), [], {serialization: 'v8'}), {
    name: 'TypeError',
    message: "fork(): the `serialization` option must be 'advanced' or 'json', not \"v8\".",
  });
  assert.throws(() => fork(fixture('idle.mjs'), [], {maxMessageSize: -1}), /`maxMessageSize` option must be an integer/);
  assert.throws(() => fork(42), /`scriptPath` must be a non-empty string or a file URL/);
  assert.throws(() => spawn('node', [], {ipcInput: 1}), /the `ipcInput` option cannot be set unless the `ipc` option is `true`/);
});

test('IPC methods on a subprocess without a channel throw synchronously', async () => {
  const subprocess = spawn(process.execPath, ['-e', '0']);
  assert.throws(() => subprocess.sendMessage('x'), {
    message: 'subprocess.sendMessage() can only be used if the `ipc` option is `true`.',
  });
  assert.throws(() => subprocess.getOneMessage(), /subprocess\.getOneMessage\(\) can only be used/);
  await subprocess;
});
