// ipc-reliability.md §5 B 12 and C (15–24): processes that die, stop, exit with messages queued, close their end
// or misbehave while the other side keeps working. Nothing may hang, crash, or leave a promise unsettled; every
// failure is a clear, typed error.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn as spawnPlain, spawnSync} from 'node:child_process';
import {fork, fixture, settle, stillRunningAfter} from './helpers.mjs';
import {
  KIND,
  blockEventLoop,
  collect,
  exited,
  fixturePath,
  frame,
  goneWithin,
  hello,
  rawPeer,
  rss,
  sendThenExit,
} from './fixtures/r-helpers.mjs';

const MiB = 1024 * 1024;
// lib/channel.js MAX_QUEUED_BYTES: past this many bytes waiting for the kernel, sends are refused.
const MAX_QUEUED_BYTES = 128 * MiB;

/** A new child still works: the parent is healthy after whatever the test did. */
const assertParentHealthy = async () => {
  const subprocess = fork(fixture('echo.mjs'));
  const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage({still: 'fine'})]);
  assert.deepEqual(reply, {still: 'fine'});
  subprocess.disconnect();
  assert.equal((await subprocess).exitCode, 0);
};

/**
 * Node-style send(): returns its back-pressure answer and a promise of the callback's error (null once written).
 * A refusal is thrown synchronously, as send() does.
 */
const nodeSend = (subprocess, message) => {
  let callback;
  const done = new Promise((resolve) => {
    callback = resolve;
  });
  const ok = subprocess.send(message, callback);
  return {ok, done};
};

/** Kills the subprocess once the test ended, whatever happened, so that a failed assertion cannot hang the run. */
const killAfter = (t, subprocess) => {
  t.after(() => {
    subprocess.kill('SIGCONT');
    subprocess.kill('SIGKILL');
  });
  return subprocess;
};

const clearChannelEnd = /the subprocess (exited or disconnected|is disconnecting|has already exited or disconnected)/;

// ---- 15. Peer SIGKILLed mid-frame ----

test('C15: the child is SIGKILLed after writing half of a 64 MiB frame: no partial message, the receive rejects, the result has the signal', async (t) => {
  const half = 32 * MiB;
  const bytes = Buffer.concat([hello(), frame(KIND.message, Buffer.concat([Buffer.from([0xc6, 0x04, 0, 0, 0]), Buffer.alloc(half)]), 64 * MiB)]);
  const subprocess = killAfter(t, rawPeer(bytes, 'hold'));
  const pending = subprocess.getOneMessage();
  await collect(subprocess.stdout).waitFor('written');
  subprocess.kill('SIGKILL');
  await assert.rejects(pending, {code: 'ERR_IPC_CHANNEL_CLOSED', message: clearChannelEnd});
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.signal, 'SIGKILL');
  assert.match(error.message, /was killed with SIGKILL/);
  assert.deepEqual(error.ipcOutput, []);
  await assertParentHealthy();
});

test('C15: a native child SIGKILLed in the middle of sending a 64 MiB message: nothing partial arrives, nothing hangs', async (t) => {
  const subprocess = killAfter(t, fork(fixture('r-half-sender.mjs'), [String(64 * MiB)], {stdio: ['ignore', 'pipe', 'inherit']}));
  const pending = subprocess.getOneMessage();
  await collect(subprocess.stdout).waitFor('sending');
  subprocess.kill('SIGKILL');
  await assert.rejects(pending, {code: 'ERR_IPC_CHANNEL_CLOSED', message: clearChannelEnd});
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.equal(error.signal, 'SIGKILL');
  assert.deepEqual(error.ipcOutput, []);
});

// Regression (fixed in c69e19c): the child died with the parent's bytes unread, the kernel reset the socket
// (POLLERR), libuv reported UV_EBADF, and the channel ended with 'polling the channel failed: bad file descriptor'.
test(
  'C15: the child is SIGKILLed while the parent is in the middle of sending it 64 MiB: the send and the receive reject clearly',
  async (t) => {
    const subprocess = killAfter(t, fork(fixture('r-stall.mjs')));
    assert.equal(await subprocess.getOneMessage(), 'ready');
    // Parts of 512 KiB travel inside the frame (8 MiB and more would go through shared memory).
    const sending = subprocess.sendMessage(Array.from({length: 128}, () => Buffer.alloc(MiB / 2, 2)));
    const pending = subprocess.getOneMessage();
    // Let the kernel take what it can of the frame.
    await new Promise((resolve) => setTimeout(resolve, 100));
    subprocess.kill('SIGKILL');
    await assert.rejects(sending, {code: 'ERR_IPC_CHANNEL_CLOSED', message: clearChannelEnd});
    await assert.rejects(pending, {code: 'ERR_IPC_CHANNEL_CLOSED', message: clearChannelEnd});
    const {ok, error} = await settle(subprocess);
    assert.equal(ok, false);
    assert.equal(error.signal, 'SIGKILL');
    assert.doesNotMatch(error.message, /bad file descriptor/);
  },
);

test('C15: every send pending when the child is SIGKILLed settles, each resolved or rejected with ERR_IPC_CHANNEL_CLOSED', async (t) => {
  const subprocess = killAfter(t, fork(fixture('r-stall.mjs')));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const sends = Array.from({length: 200}, (_, i) => subprocess.sendMessage({i, data: Buffer.alloc(64 * 1024)}));
  subprocess.kill('SIGKILL');
  const results = await Promise.allSettled(sends);
  for (const result of results) {
    if (result.status === 'rejected') {
      assert.equal(result.reason.code, 'ERR_IPC_CHANNEL_CLOSED');
    }
  }
  assert.ok(results.some(({status}) => status === 'rejected'));
  const {error} = await settle(subprocess);
  assert.equal(error.signal, 'SIGKILL');
});

// ---- Messages queued both ways at exit ----

// Regression (fixed in c69e19c): a child that exits with the parent's bytes unread resets the socket; the parent
// used to end the channel on the POLLERR without reading, losing the child's last messages.
test(
  'the child exits with messages queued both ways: every message it sent arrives, every parent send settles',
  async (t) => {
    const count = 1000;
    const subprocess = killAfter(t, fork(fixture('r-exit-queued.mjs'), [String(count), '300']));
    assert.equal(await subprocess.getOneMessage(), 'ready');
    const sends = Array.from({length: 256}, (_, i) => subprocess.sendMessage({i, data: Buffer.alloc(64 * 1024)}));
    await sends[0];
    // The parent is busy while the child sends and exits, so the child's messages wait in the kernel.
    blockEventLoop(1500);
    const results = await Promise.allSettled(sends);
    for (const result of results) {
      if (result.status === 'rejected') {
        assert.equal(result.reason.code, 'ERR_IPC_CHANNEL_CLOSED');
      }
    }
    const {ok, result, error} = await settle(subprocess);
    assert.equal(ok, true, error?.message);
    assert.equal(result.exitCode, 0);
    assert.deepEqual(
      result.ipcOutput,
      ['ready', ...Array.from({length: count}, (_, i) => ({i}))],
    );
  },
);

test(
  'the child sends and exits at once while the parent still has bytes queued for it: every message it sent arrives',

  async (t) => {
    const count = 100;
    const subprocess = killAfter(t, fork(fixture('r-send-when-idle.mjs'), [String(count)]));
    // 32 MiB: the kernel takes a few, the rest stays queued in the parent.
    const sends = Array.from({length: 512}, (_, i) => subprocess.sendMessage({i, data: Buffer.alloc(64 * 1024)}));
    await sends[0];
    // Busy meanwhile: the child drains the kernel, finds nothing more coming, sends and exits.
    blockEventLoop(1500);
    for (const result of await Promise.allSettled(sends)) {
      assert.ok(result.status === 'fulfilled' || result.reason.code === 'ERR_IPC_CHANNEL_CLOSED');
    }
    const {ok, result, error} = await settle(subprocess);
    assert.equal(ok, true, error?.message);
    assert.deepEqual(result.ipcOutput, Array.from({length: count}, (_, i) => ({i})));
  },
);

test(
  'the parent exits right after its send resolved, before the child reads: the child still receives the message',

  async (t) => {
    const parent = killAfter(t, spawnPlain(process.execPath, [fixturePath('r-exit-parent.mjs')], {stdio: ['ignore', 'pipe', 'inherit']}));
    const output = collect(parent.stdout);
    assert.deepEqual(await exited(parent), {code: 0, signal: null});
    const [first, second] = (await output.end).trim().split('\n').map((line) => JSON.parse(line));
    assert.ok(await goneWithin(first.child, 10_000));
    assert.deepEqual(second, {message: 'the job'});
  },
);

// ---- 16. Send, then exit ----

for (const mode of ['await', 'naive']) {
  test(`C16: messages of 1 KiB, 256 KiB and 8 MiB sent right before process.exit() all arrive (${mode}, 5 runs each)`, async () => {
    for (const [count, size] of [
      [50, 1024],
      [8, 256 * 1024],
      [3, 8 * MiB],
    ]) {
      await Promise.all(Array.from({length: 5}, () => sendThenExit(count, size, mode)));
    }
  });
}

test('C16: 8 MiB sent right before process.exit() arrives while the parent is busy (the exit waits for the parent to read)', async () => {
  const subprocess = fork(fixture('r-send-exit.mjs'), ['2', String(8 * MiB), 'naive']);
  blockEventLoop(500);
  const {exitCode, ipcOutput} = await subprocess;
  assert.equal(exitCode, 0);
  assert.deepEqual(
    ipcOutput.map(({i, data}) => [i, data.length]),
    [
      [0, 8 * MiB],
      [1, 8 * MiB],
    ],
  );
});

test('C16: a child that exits with the parent\'s bytes unread (the kernel resets the connection): all it sent still arrives', async () => {
  const subprocess = fork(fixture('r-exit-unread.mjs'));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  await subprocess.sendMessage('never read');
  // The child sends 1.5 MiB and exits while this process does not read: the reset reaches a socket that
  // still holds all of it.
  blockEventLoop(1000);
  const {exitCode, ipcOutput} = await subprocess;
  assert.equal(exitCode, 0);
  assert.equal(ipcOutput[0], 'ready');
  assert.deepEqual(
    ipcOutput.slice(1).map(({i, data}) => [i, data.length, data[0]]),
    Array.from({length: 6}, (_, i) => [i, 256 * 1024, i]),
  );
});

// ---- 17. The parent reads to end-of-file before reporting the exit ----

test('C17: with the parent blocked while the child sends and exits, the message comes first: message, disconnect, exit, close', async () => {
  const subprocess = fork(fixture('exit-code.mjs'), ['0']);
  const events = [];
  subprocess.on('message', (message) => events.push(`message ${message}`));
  for (const name of ['disconnect', 'exit', 'close']) {
    subprocess.on(name, () => events.push(name));
  }
  spawnSync('sleep', ['0.5']);
  const {ipcOutput} = await subprocess;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(ipcOutput, ['before exit']);
  assert.deepEqual(events, ['message before exit', 'disconnect', 'exit', 'close']);
});

// ---- 18. Parent death ----

test('C18: the parent is SIGKILLed: the orphan child sees the end at once, its receives reject or end, and it exits by itself', async (t) => {
  const middle = killAfter(t, spawnPlain(process.execPath, [fixturePath('r-middle.mjs')], {stdio: ['ignore', 'pipe', 'inherit']}));
  const output = collect(middle.stdout);
  await output.waitFor('\n');
  const {orphan} = JSON.parse(output.text().split('\n')[0]);
  middle.kill('SIGKILL');
  await exited(middle);
  // stdout ends once the orphan, which shares it, is gone too.
  const lines = (await output.end).trim().split('\n').slice(1).map((line) => JSON.parse(line));
  assert.ok(await goneWithin(orphan, 10_000), 'the orphan is still running');
  assert.deepEqual(lines.find((line) => 'getOneMessage' in line), {
    getOneMessage: 'rejected',
    code: 'ERR_IPC_CHANNEL_CLOSED',
    message: 'getOneMessage() could not complete: the parent process exited or disconnected.',
  });
  assert.deepEqual(lines.find((line) => 'getEachMessage' in line), {getEachMessage: 'ended'});
  assert.deepEqual(lines.at(-1), {exit: 0});
});

// ---- 19. Disconnect with queued messages ----

test('C19: the parent queues 10k messages and disconnects at once: all are flushed, then the channel closes; every send resolves', async () => {
  const count = 10_000;
  const subprocess = fork(fixture('r-count.mjs'), [], {stdio: ['ignore', 'pipe', 'inherit']});
  const output = collect(subprocess.stdout);
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const sends = Array.from({length: count}, (_, seq) => subprocess.sendMessage({seq, data: 'x'.repeat(100)}));
  subprocess.disconnect();
  const results = await Promise.allSettled(sends);
  assert.equal(results.filter(({status}) => status === 'fulfilled').length, count);
  assert.equal((await subprocess).exitCode, 0);
  assert.deepEqual(JSON.parse(await output.end), {count, inOrder: true, bytes: count * 100});
});

test('C19: the child queues 10k messages and disconnects at once: the parent receives all of them, in order', async () => {
  const count = 10_000;
  const subprocess = fork(fixture('r-queue-disconnect.mjs'), [String(count)], {stdio: ['ignore', 'pipe', 'inherit']});
  const output = collect(subprocess.stdout);
  const {exitCode, ipcOutput} = await subprocess;
  assert.equal(exitCode, 0);
  assert.equal(ipcOutput.length, count);
  assert.ok(ipcOutput.every(({seq}, i) => seq === i));
  assert.deepEqual(JSON.parse(await output.end), {fulfilled: count});
});

// ---- 20. Double disconnect, send after disconnect ----

test('C20: a second disconnect() is a no-op; sendMessage() after it throws ERR_IPC_CHANNEL_CLOSED; Node-style send() calls back with it', async () => {
  const subprocess = fork(fixture('pending-receive.mjs'));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  subprocess.disconnect();
  subprocess.disconnect();
  assert.throws(() => subprocess.sendMessage('late'), {code: 'ERR_IPC_CHANNEL_CLOSED'});
  const callbackError = await new Promise((resolve) => {
    subprocess.send('late', resolve);
  });
  assert.equal(callbackError.code, 'ERR_IPC_CHANNEL_CLOSED');
  await settle(subprocess);
});

// ---- 21. A throwing listener ----

test(
  "C21: a child 'message' listener that throws on every message: each throw surfaces once and every message is still delivered",
  async (t) => {
    const subprocess = killAfter(t, fork(fixture('r-throwing-listener.mjs')));
    for (let i = 0; i < 10; i++) {
      subprocess.sendMessage(i);
    }
    const [counts] = await Promise.all([
      Promise.race([
        subprocess.getOneMessage(),
        stillRunningAfter(subprocess, 2000).then(() => 'the child never answered'),
      ]),
      subprocess.sendMessage({end: true}),
    ]);
    assert.deepEqual(counts, {seen: 10, uncaught: 10});
    subprocess.kill();
    await settle(subprocess);
  },
);

// ---- 22. The peer never reads ----

test('C22: a child that never reads: sends are refused with ERR_IPC_QUEUE_FULL past the documented limit, and killing it settles the rest', async (t) => {
  const subprocess = killAfter(t, fork(fixture('r-stall.mjs')));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const data = Buffer.alloc(MiB);
  const accepted = [];
  let refusal;
  // Node-style send() throws the refusal synchronously; sendMessage() rejects with it (checked below).
  for (let i = 0; i < 1000 && refusal === undefined; i++) {
    try {
      accepted.push(nodeSend(subprocess, {i, data}).done);
    } catch (error) {
      refusal = error;
    }
  }
  assert.equal(refusal?.code, 'ERR_IPC_QUEUE_FULL');
  assert.ok(accepted.length * MiB <= MAX_QUEUED_BYTES + 16 * MiB, `${accepted.length} MiB were accepted`);
  await assert.rejects(subprocess.sendMessage({data}), {
    code: 'ERR_IPC_QUEUE_FULL',
    message: /^subprocess\.sendMessage\(\) cannot queue more: \d+ bytes wait for the subprocess to read them, above the limit of 134217728 bytes\./,
  });
  subprocess.kill('SIGKILL');
  for (const error of await Promise.all(accepted)) {
    assert.ok(error === null || error.code === 'ERR_IPC_CHANNEL_CLOSED', error?.message);
  }
  await settle(subprocess);
});

// ---- 12. Back-pressure against a stopped receiver ----

test('B12: a SIGSTOPped child: send() returns false early, the queue stops at the limit with ERR_IPC_QUEUE_FULL, memory stays bounded, and all flows after SIGCONT', async (t) => {
  const subprocess = killAfter(t, fork(fixture('r-count.mjs'), [], {buffer: false}));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  subprocess.kill('SIGSTOP');
  try {
    const rssBefore = rss();
    const data = Buffer.alloc(64 * 1024, 5);
    let seq = 0;
    // Node-style send(): the back-pressure signal comes once the kernel's buffer is full and about 1 MiB waits.
    let firstFalse;
    const written = [];
    while (firstFalse === undefined) {
      const {ok, done} = nodeSend(subprocess, {seq, data});
      written.push(done);
      if (!ok) {
        firstFalse = seq;
      }
      seq++;
    }
    assert.ok(firstFalse * data.length < 16 * MiB, `send() returned true for ${firstFalse} messages of 64 KiB`);
    // An awaited sendMessage() waits while the child is stopped…
    const awaited = subprocess.sendMessage({seq: seq++, data});
    assert.equal(await Promise.race([awaited.then(() => 'resolved'), new Promise((resolve) => setTimeout(resolve, 300, 'waiting'))]), 'waiting');
    // …and sends that do not wait are refused with a typed error once the queue reaches the limit.
    let refusal;
    while (refusal === undefined && seq * data.length < 2 * MAX_QUEUED_BYTES) {
      try {
        written.push(nodeSend(subprocess, {seq, data}).done);
        seq++;
      } catch (error) {
        refusal = error;
      }
    }
    assert.equal(refusal?.code, 'ERR_IPC_QUEUE_FULL');
    await assert.rejects(subprocess.sendMessage({seq, data}), {code: 'ERR_IPC_QUEUE_FULL'});
    const growth = rss() - rssBefore;
    assert.ok(growth < MAX_QUEUED_BYTES + 64 * MiB, `the parent's RSS grew by ${growth} bytes`);
    subprocess.kill('SIGCONT');
    await awaited;
    assert.ok((await Promise.all(written)).every((error) => error === null));
    const [summary] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage({done: true})]);
    assert.deepEqual(summary, {count: seq, inOrder: true, bytes: seq * data.length});
    assert.equal((await subprocess).exitCode, 0);
  } finally {
    subprocess.kill('SIGCONT');
  }
});

// ---- Writing to a peer that closed its end ----

test('a peer that closed its end: the parent’s sends fail with ERR_IPC_CHANNEL_CLOSED, never an EPIPE crash', async (t) => {
  const subprocess = killAfter(t, fork(fixture('r-closer.mjs')));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  let failure;
  for (let i = 0; i < 10_000 && failure === undefined; i++) {
    try {
      await subprocess.sendMessage({i});
    } catch (error) {
      failure = error;
    }
  }
  assert.equal(failure?.code, 'ERR_IPC_CHANNEL_CLOSED');
  assert.match(failure.message, /^subprocess\.sendMessage\(\) cannot be used: the subprocess (is disconnecting|has already exited or disconnected)\.$/);
  assert.ok(await stillRunningAfter(subprocess, 100));
  subprocess.kill();
  await settle(subprocess);
});

test('the parent closed the channel: the child’s sends fail with ERR_IPC_CHANNEL_CLOSED, no SIGPIPE, and it exits with 0', async () => {
  const subprocess = fork(fixture('r-send-after-close.mjs'), [], {stdio: ['ignore', 'pipe', 'inherit']});
  const output = collect(subprocess.stdout);
  assert.equal(await subprocess.getOneMessage(), 'ready');
  subprocess.disconnect();
  const {exitCode, signal} = await subprocess;
  assert.equal(signal, undefined);
  assert.equal(exitCode, 0);
  assert.deepEqual(JSON.parse(await output.end), {
    sendMessage: ['ERR_IPC_CHANNEL_CLOSED', 'ERR_IPC_CHANNEL_CLOSED', 'ERR_IPC_CHANNEL_CLOSED'],
    nodeSend: 'ERR_IPC_CHANNEL_CLOSED',
  });
});

test('sending while the child exits, 10 times over: every send resolves or fails with ERR_IPC_CHANNEL_CLOSED', async () => {
  for (let run = 0; run < 10; run++) {
    const subprocess = fork(fixture('idle.mjs'), [], {buffer: false});
    const outcomes = new Set();
    for (let i = 0; i < 100_000 && subprocess.connected; i++) {
      const sent = subprocess.sendMessage(i).then(
        () => 'sent',
        (error) => error.code,
      );
      if (i % 100 === 0) {
        outcomes.add(await sent);
      }
    }
    for (const outcome of outcomes) {
      assert.match(outcome, /^(sent|ERR_IPC_CHANNEL_CLOSED)$/);
    }
    const {ok, error} = await settle(subprocess);
    assert.ok(ok || error.code === 'ERR_IPC_CHANNEL_CLOSED', error?.message);
  }
});

// ---- 24. ref/unref toggling ----

for (const last of ['unref', 'ref']) {
  test(`C24: 10k ref()/unref() calls under traffic leak no reference: ending on ${last}() the child ${last === 'unref' ? 'exits by itself' : 'stays'}`, async (t) => {
    const subprocess = killAfter(t, fork(fixture('r-refs.mjs'), [last]));
    assert.equal(await subprocess.getOneMessage(), 'ready');
    const [{received}] = await Promise.all([
      subprocess.getOneMessage(),
      ...Array.from({length: 1000}, (_, i) => subprocess.sendMessage(i)),
    ]);
    assert.equal(received, 1000);
    if (last === 'unref') {
      const {exitCode} = await subprocess;
      assert.equal(exitCode, 0);
    } else {
      assert.ok(await stillRunningAfter(subprocess, 500));
      subprocess.disconnect();
      subprocess.kill();
      await settle(subprocess);
    }
  });
}
