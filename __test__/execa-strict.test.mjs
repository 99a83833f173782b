// Strict mode (execa R13–R18), also with serialization: 'json' (API.md "Better than execa").
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {fork, collectStderr, fixture, settle} from './helpers.mjs';

const firstLine = (text) => text.split('\n')[0];

for (const serialization of ['advanced', 'json']) {
  test(`R15: strict resolves when the child waits in getOneMessage() (${serialization})`, async () => {
    const subprocess = fork(fixture('s-receive-once.mjs'), [], {serialization});
    await subprocess.sendMessage('hi', {strict: true});
    const {ipcOutput} = await subprocess;
    assert.deepEqual(ipcOutput, [{received: 'hi'}]);
  });
}

test('R17: strict resolves while a getEachMessage() loop body runs', async () => {
  const subprocess = fork(fixture('s-iterate-slow.mjs'));
  for (let i = 0; i < 5; i++) {
    await subprocess.sendMessage(i, {strict: true});
  }
  await subprocess.sendMessage('end', {strict: true});
  const {ipcOutput} = await subprocess;
  assert.deepEqual(ipcOutput, [[0, 1, 2, 3, 4]]);
});

test('R15, R18: a strict message sent while the child works without listening is rejected as not listening', async () => {
  const subprocess = fork(fixture('s-busy-between.mjs'), [], {stdio: ['ignore', 'inherit', 'pipe']});
  const stderr = collectStderr(subprocess);
  await subprocess.sendMessage('first', {strict: true});
  assert.equal(await subprocess.getOneMessage(), 'working');
  await assert.rejects(subprocess.sendMessage('second', {strict: true}), {
    code: 'ERR_IPC_NOT_LISTENING',
    message: 'subprocess.sendMessage() failed: the subprocess is not listening to incoming messages.',
  });
  // R11: the failure disconnected the channel, so the child's second receive ends.
  assert.equal(subprocess.connected, false);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 1);
  assert.match(stderr(), /getOneMessage\(\) (could not complete|cannot be used): the parent process (has already )?exited or disconnected/);
});

test('R15: strict to a child that exits without listening rejects', async () => {
  const subprocess = fork(fixture('idle.mjs'));
  await assert.rejects(subprocess.sendMessage('nobody', {strict: true}), {
    message: 'subprocess.sendMessage() failed: the subprocess exited without listening to incoming messages.',
  });
  await subprocess;
});

test("R17: a child's strict send succeeds against the parent's ipcOutput collector", async () => {
  const {exitCode, ipcOutput} = await fork(fixture('s-strict-send.mjs'), ['collector'], {stdio: ['ignore', 'inherit', 'pipe']});
  assert.equal(exitCode, 0);
  assert.deepEqual(ipcOutput, ['from child']);
});

test("R17: with buffer: false and nobody listening, the child's strict send is rejected", async () => {
  const subprocess = fork(fixture('s-strict-send.mjs'), ['collector'], {buffer: false, stdio: ['ignore', 'inherit', 'pipe']});
  let stderr = '';
  subprocess.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 2);
  assert.equal(stderr, 'strict failed: sendMessage() failed: the parent process is not listening to incoming messages.\n');
});

test('R16: both sides sending strictly while neither listens is detected on both sides', async () => {
  const subprocess = fork(fixture('s-strict-send.mjs'), ['deadlock'], {buffer: false, stdio: ['ignore', 'inherit', 'pipe']});
  let stderr = '';
  subprocess.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const error = await subprocess.sendMessage('from parent', {strict: true}).then(
    () => undefined,
    (error_) => error_,
  );
  assert.ok(error, 'the parent strict send must fail');
  assert.match(
    firstLine(error.message),
    /^subprocess\.sendMessage\(\) failed: the subprocess (is sending a message too, instead of listening to incoming messages|is not listening to incoming messages|exited without listening to incoming messages)\.$/,
  );
  await settle(subprocess);
  assert.match(stderr, /^strict failed: sendMessage\(\) failed: the parent process (is sending a message too|is not listening|exited without listening)/);
  assert.ok(
    error.code === 'ERR_IPC_DEADLOCK' || stderr.includes('is sending a message too'),
    'at least one side reports the deadlock',
  );
});

test('R16: strict sends both ways succeed when one side listens at the same time', async () => {
  const subprocess = fork(fixture('s-strict-send.mjs'), ['listen-first'], {buffer: false});
  const [fromChild] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage('from parent', {strict: true})]);
  assert.equal(fromChild, 'from child');
  assert.deepEqual(await subprocess.getOneMessage(), {reply: 'from parent'});
  await subprocess;
});

test('R37: 100 concurrent strict sends all succeed, in order', async () => {
  const subprocess = fork(fixture('s-get-one-loop.mjs'), ['100']);
  await Promise.all(Array.from({length: 100}, (_, i) => subprocess.sendMessage(i, {strict: true})));
  const {ipcOutput} = await subprocess;
  assert.deepEqual(ipcOutput, [Array.from({length: 100}, (_, i) => i)]);
});

test('regression R24: a reply that arrives in the same read as the ack of a strict send is held for the next receive', async () => {
  for (let i = 0; i < 20; i++) {
    const subprocess = fork(fixture('s-reply-in-filter.mjs'));
    await subprocess.sendMessage(i, {strict: true});
    assert.deepEqual(await subprocess.getOneMessage(), {reply: i});
    await subprocess;
  }
});
