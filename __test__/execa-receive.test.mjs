// Receiving, ordering, keep-alive and disconnects (execa R4–R6, R10–R12, R19–R37, R59–R61).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {fork, collectStderr, fixture, settle, stillRunningAfter} from './helpers.mjs';

test('R6: options are validated synchronously with a TypeError naming the call', () => {
  const subprocess = fork(fixture('echo.mjs'));
  assert.throws(() => subprocess.sendMessage('x', null), {
    name: 'TypeError',
    message: 'subprocess.sendMessage(): its options must be an object, not null.',
  });
  assert.throws(() => subprocess.getOneMessage({filter: 'yes'}), {
    message: 'subprocess.getOneMessage(): the `filter` option must be a function, not "yes".',
  });
  assert.throws(() => subprocess.getEachMessage({reference: 1}), {
    message: 'subprocess.getEachMessage(): the `reference` option must be a boolean, not 1 (number).',
  });
  assert.throws(() => subprocess.sendMessage('x', {stritc: true}), /unknown option `stritc`; it accepts `strict`/);
  subprocess.disconnect();
  return subprocess;
});

test('R10, R11: an unserializable message rejects naming its path, and disconnects', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  await assert.rejects(subprocess.sendMessage({jobs: [{run() {}}]}), (error) => {
    assert.equal(error.name, 'TypeError');
    assert.equal(error.code, 'ERR_IPC_UNSERIALIZABLE');
    assert.match(error.message, /^subprocess\.sendMessage\(\)'s argument type is invalid: the message cannot be serialized: \[object Object\]\./);
    assert.match(error.cause.message, /jobs\[0\]\.run is a function/);
    return true;
  });
  const {exitCode} = await subprocess;
  assert.equal(exitCode, 0);
  assert.equal(subprocess.connected, false);
});

test('R12: top-level undefined and bigint are delivered in advanced mode (Node would refuse them)', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  for (const value of [undefined, 0n, [undefined]]) {
    const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(value)]);
    assert.deepEqual(reply, value);
  }
  subprocess.disconnect();
  await subprocess;
});

test('R20: filter skips messages for that call only', async () => {
  const subprocess = fork(fixture('s-burst.mjs'), ['10']);
  const [even, any] = await Promise.all([
    subprocess.getOneMessage({filter: (message) => message === 4}),
    subprocess.getOneMessage(),
  ]);
  assert.equal(even, 4);
  assert.equal(any, 0);
  subprocess.disconnect();
  await subprocess;
});

test('R20, R21: a filter that throws rejects with that error and disconnects', async () => {
  const subprocess = fork(fixture('s-burst.mjs'), ['3']);
  const boom = new Error('boom');
  await assert.rejects(
    subprocess.getOneMessage({
      filter() {
        throw boom;
      },
    }),
    (error) => error === boom,
  );
  await subprocess;
  assert.equal(subprocess.connected, false);
});

test('R22: concurrent getOneMessage() calls all get the same message', async () => {
  const subprocess = fork(fixture('s-burst.mjs'), ['1']);
  const replies = await Promise.all([subprocess.getOneMessage(), subprocess.getOneMessage(), subprocess.getOneMessage()]);
  assert.deepEqual(replies, [0, 0, 0]);
  subprocess.disconnect();
  await subprocess;
});

test('R23: 100 getOneMessage() in a row on a burst of 100 messages lose nothing (parent)', async () => {
  const subprocess = fork(fixture('s-burst.mjs'), ['100'], {buffer: false});
  const received = [];
  for (let i = 0; i < 100; i++) {
    received.push(await subprocess.getOneMessage());
  }
  assert.deepEqual(received, Array.from({length: 100}, (_, i) => i));
  subprocess.disconnect();
  await subprocess;
});

test('R23: 100 getOneMessage() in a row lose nothing (child)', async () => {
  const subprocess = fork(fixture('s-get-one-loop.mjs'), ['100']);
  await Promise.all(Array.from({length: 100}, (_, i) => subprocess.sendMessage(i)));
  const {ipcOutput} = await subprocess;
  assert.deepEqual(ipcOutput, [Array.from({length: 100}, (_, i) => i)]);
});

test('R24: a message that arrives while a send is in flight is held for the receive that follows it', async () => {
  const subprocess = fork(fixture('s-hello-then-receive.mjs'));
  const big = 'x'.repeat(8 * 1024 * 1024);
  await subprocess.sendMessage(big);
  assert.equal(await subprocess.getOneMessage(), 'hello');
  assert.deepEqual(await subprocess.getOneMessage(), {length: big.length});
  await subprocess;
});

test('R25, R27: messages nobody listens for are dropped, but still reach ipcOutput', async () => {
  const subprocess = fork(fixture('s-burst.mjs'), ['3']);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const late = subprocess.getOneMessage();
  subprocess.disconnect();
  await assert.rejects(late, /could not complete/);
  const {ipcOutput} = await subprocess;
  assert.deepEqual(ipcOutput, [0, 1, 2]);
});

test('R30: getEachMessage() buffers while the loop body runs', async () => {
  const subprocess = fork(fixture('s-iterate-slow.mjs'));
  for (let i = 0; i < 5; i++) {
    subprocess.sendMessage(i);
  }
  await subprocess.sendMessage('end');
  const {ipcOutput} = await subprocess;
  assert.deepEqual(ipcOutput, [[0, 1, 2, 3, 4]]);
});

test('R30: a loop that falls behind in bursts gets every message once, in order, as its buffer drains and refills', async () => {
  const subprocess = fork(fixture('s-iterate-bursts.mjs'));
  // Bursts from one message to many read batches (20k messages), small ones right after large ones.
  const bursts = [1, 3, 700, 2, 20_000, 5, 3000, 1];
  let sent = 0;
  for (const size of bursts) {
    for (let i = 0; i < size; i++) {
      subprocess.sendMessage(sent++);
    }
    subprocess.sendMessage({end: sent});
    assert.deepEqual(await subprocess.getOneMessage(), {received: sent});
  }
  await subprocess.sendMessage({stop: true});
  await subprocess;
});

test('R32: breaking out of the parent loop disconnects and waits for the subprocess', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  subprocess.sendMessage('one');
  for await (const message of subprocess.getEachMessage()) {
    assert.equal(message, 'one');
    break;
  }
  assert.equal(subprocess.connected, false);
  assert.equal(subprocess.exitCode, 0);
});

test('R32: the parent loop rethrows the failure of the subprocess', async () => {
  const subprocess = fork(fixture('s-fail.mjs'));
  const seen = [];
  await assert.rejects(
    (async () => {
      for await (const message of subprocess.getEachMessage()) {
        seen.push(message);
      }
    })(),
    {exitCode: 5, shortMessage: /Command failed with exit code 5/},
  );
  assert.deepEqual(seen, ['one', 'two']);
});

test('R33: a child that breaks out of its loop exits by itself', async () => {
  const subprocess = fork(fixture('s-iterate-break.mjs'));
  await subprocess.sendMessage('a');
  const {exitCode, ipcOutput} = await subprocess;
  assert.equal(exitCode, 0);
  assert.deepEqual(ipcOutput, [{first: 'a'}]);
});

test('R34a: two iterators both get every message; a child can iterate twice', async () => {
  const subprocess = fork(fixture('s-iterate-twice.mjs'));
  const first = subprocess.getEachMessage();
  const second = subprocess.getEachMessage();
  assert.deepEqual((await first.next()).value, 'round 0');
  assert.deepEqual((await second.next()).value, 'round 0');
  for (const n of [1, 2, 3]) {
    await subprocess.sendMessage(n);
  }
  assert.deepEqual((await first.next()).value, 'round 1');
  for (const n of [4, 5, 6]) {
    await subprocess.sendMessage(n);
  }
  assert.deepEqual((await first.next()).value, [
    [1, 2, 3],
    [4, 5, 6],
  ]);
  assert.deepEqual((await second.next()).value, 'round 1');
  await first.return();
  await second.return();
});

test('R35: reference: false lets the child exit while waiting', async () => {
  for (const mode of ['get-one-unreferenced', 'get-each-unreferenced']) {
    const {exitCode, ipcOutput} = await fork(fixture('s-reference.mjs'), [mode]);
    assert.equal(exitCode, 0);
    assert.deepEqual(ipcOutput, ['ready']);
  }
});

test('R35: a getEachMessage() that is never iterated keeps the child alive', async () => {
  const subprocess = fork(fixture('s-reference.mjs'), ['get-each-not-iterated']);
  assert.equal(await subprocess.getOneMessage(), 'ready');
  assert.ok(await stillRunningAfter(subprocess, 500));
  subprocess.disconnect();
  await subprocess;
});

test('R61: after the parent disconnects, the child learns it and its receive rejects', async () => {
  const subprocess = fork(fixture('s-receive-once.mjs'), [], {stdio: ['ignore', 'inherit', 'pipe']});
  const stderr = collectStderr(subprocess);
  subprocess.disconnect();
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.exitCode, 1);
  assert.match(stderr(), /getOneMessage\(\) (could not complete|cannot be used): the parent process (has already )?exited or disconnected/);
  assert.throws(() => subprocess.sendMessage('x'), /cannot be used: the subprocess has already exited or disconnected/);
  // A second disconnect is harmless.
  subprocess.disconnect();
});
