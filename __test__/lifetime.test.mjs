// When the processes and the channel end, and what keeps a child alive.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {fork, fixture, settle, stillRunningAfter} from './helpers.mjs';

test('a child whose only remaining work is the channel exits by itself', async () => {
  const subprocess = fork(fixture('idle.mjs'));
  const result = await subprocess;
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.ipcOutput, ['ready']);
});

test('a pending getOneMessage() keeps the child alive until a message comes', async () => {
  const subprocess = fork(fixture('pending-receive.mjs'));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  assert.ok(await stillRunningAfter(subprocess, 500));
  await subprocess.sendMessage('go');
  const result = await subprocess;
  assert.deepEqual(result.ipcOutput, ['ready', {got: 'go'}]);
});

test('the parent pending getOneMessage() rejects when the child exits', async () => {
  const subprocess = fork(fixture('idle.mjs'));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  await assert.rejects(subprocess.getOneMessage(), {
    message: 'subprocess.getOneMessage() could not complete: the subprocess exited or disconnected.',
  });
  await subprocess;
});

test('SIGKILL while a receive is pending: the receive rejects and the result carries the signal', async () => {
  const subprocess = fork(fixture('wait-forever.mjs'));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const pending = subprocess.getOneMessage();
  subprocess.kill('SIGKILL');
  await assert.rejects(pending, /could not complete: the subprocess exited or disconnected/);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.signal, 'SIGKILL');
  assert.equal(error.exitCode, undefined);
  assert.deepEqual(error.ipcOutput, ['ready']);
  assert.match(error.message, /was killed with SIGKILL/);
  assert.match(error.message, /\n\nready$/);
  assert.throws(() => subprocess.sendMessage('late'), {
    message: 'subprocess.sendMessage() cannot be used: the subprocess has already exited or disconnected.',
  });
});

test('a failing child rejects with exitCode and ipcOutput; its last message is not lost', async () => {
  const {ok, error} = await settle(fork(fixture('exit-code.mjs'), ['3']));
  assert.equal(ok, false);
  assert.equal(error.exitCode, 3);
  assert.deepEqual(error.ipcOutput, ['before exit']);
  assert.match(error.message, /^Command failed with exit code 3: .*exit-code\.mjs 3\n\nbefore exit$/);
});

test('the getEachMessage() loop of the parent ends when the child exits', async () => {
  const subprocess = fork(fixture('send-n.mjs'), ['5']);
  const messages = [];
  for await (const message of subprocess.getEachMessage()) {
    messages.push(message.i);
  }
  assert.deepEqual(messages, [0, 1, 2, 3, 4]);
});

test('sending to a child that already exited rejects clearly', async () => {
  const subprocess = fork(fixture('idle.mjs'));
  await subprocess;
  assert.throws(() => subprocess.sendMessage('x'), /cannot be used: the subprocess has already exited or disconnected/);
});
