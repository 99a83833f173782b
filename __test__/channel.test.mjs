// Messages over the real channel: round trips, order under load, large payloads, concurrent sends.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {fork, fixture} from './helpers.mjs';

for (const serialization of ['advanced', 'json']) {
  test(`round trips both ways (${serialization})`, async () => {
    const subprocess = fork(fixture('echo.mjs'), [], {serialization});
    for (const message of [{a: 1, b: [true, null, 'x']}, 'text', 42, [1, 2, 3]]) {
      const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(message)]);
      assert.deepEqual(reply, message);
    }
    subprocess.disconnect();
    const result = await subprocess;
    assert.equal(result.exitCode, 0);
    assert.equal(result.ipcOutput.length, 4);
  });
}

test('10k messages each way at the same time arrive complete and in order', async () => {
  const count = 10_000;
  const subprocess = fork(fixture('flood-both.mjs'), [String(count)], {buffer: false});
  const received = [];
  const reading = (async () => {
    for await (const message of subprocess.getEachMessage()) {
      received.push(message);
      if (received.length === count + 1) {
        break;
      }
    }
  })();
  let last;
  for (let i = 0; i < count; i++) {
    last = subprocess.sendMessage({from: 'parent', i});
  }
  await last;
  await reading;
  const fromChild = received.slice(0, count);
  assert.ok(fromChild.every((message, i) => message.from === 'child' && message.i === i));
  assert.deepEqual(received[count], {received: count, inOrder: true});
});

test('200k messages from the child arrive in order', async () => {
  const count = 200_000;
  const subprocess = fork(fixture('send-n.mjs'), [String(count)], {buffer: false});
  let expected = 0;
  let inOrder = true;
  for await (const message of subprocess.getEachMessage()) {
    inOrder &&= message.i === expected;
    expected++;
  }
  assert.equal(expected, count);
  assert.ok(inOrder);
});

for (const [name, make] of [
  ['string', () => 'é'.repeat(8 * 1024 * 1024)],
  ['Buffer', () => Buffer.alloc(16 * 1024 * 1024, 7)],
]) {
  test(`a 16 MiB ${name} makes the round trip intact`, async () => {
    const subprocess = fork(fixture('echo.mjs'), [], {buffer: false});
    const message = make();
    const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(message)]);
    assert.equal(reply.length, message.length);
    assert.ok(name === 'Buffer' ? Buffer.isBuffer(reply) && reply.equals(message) : reply === message);
    subprocess.disconnect();
    await subprocess;
  });
}

// Rust hands JS one read of at most 64 KiB per wake-up, so a peer that floods cannot hold the event loop: between
// two turns of the loop (setImmediate callbacks) come the messages of one such batch at most.
test('a flood from the child comes in batches of at most 64 KiB, one per turn of the event loop', async () => {
  const count = 200_000;
  const subprocess = fork(fixture('s-burst.mjs'), [String(count)], {buffer: false});
  let inTurn = 0;
  let most = 0;
  let turns = 0;
  let reading = true;
  const tick = () => {
    most = Math.max(most, inTurn);
    inTurn = 0;
    turns++;
    if (reading) setImmediate(tick);
  };
  setImmediate(tick);
  let next = 0;
  for await (const message of subprocess.getEachMessage()) {
    if (message !== next) assert.fail(`message ${next} came as ${message}`);
    next++;
    inTurn++;
    if (next === count) break;
  }
  reading = false;
  most = Math.max(most, inTurn);
  // The smallest frame (a header and a one-byte number) takes 6 bytes: 64 KiB holds 10,923 of them at most.
  assert.ok(most <= Math.ceil(65536 / 6), `${most} messages in one turn of the loop`);
  assert.ok(turns >= count / Math.ceil(65536 / 6), `${turns} turns of the loop`);
  assert.equal((await subprocess).exitCode, 0);
});

test('concurrent sends keep their call order', async () => {
  const subprocess = fork(fixture('echo.mjs'));
  const replies = [];
  const reading = (async () => {
    for await (const message of subprocess.getEachMessage()) {
      replies.push(message);
      if (replies.length === 100) {
        break;
      }
    }
  })();
  await Promise.all(Array.from({length: 100}, (_, i) => subprocess.sendMessage(i)));
  await reading;
  assert.deepEqual(replies, Array.from({length: 100}, (_, i) => i));
});

test('small binaries stay intact after later batches arrive (received batches share one landing buffer)', async () => {
  const {binariesFor} = await import(fixture('s-binaries-shape.mjs'));
  const count = 3000;
  const subprocess = fork(fixture('s-binaries.mjs'), [String(count)], {buffer: false});
  const received = [];
  for await (const message of subprocess.getEachMessage()) {
    received.push(message);
    if (received.length === count) break;
  }
  // Checked only now, when thousands of later frames have been read through the same buffer.
  for (const [i, message] of received.entries()) {
    assert.deepStrictEqual(message, binariesFor(i));
  }
});

test('binaries just under the zero-copy size stay intact after later batches arrive', async () => {
  // A view into the landing buffer would show the bytes of a later batch: binaries that can share a batch with
  // it are copied (the codec's zero-copy size is no smaller than the landing buffer).
  const {edgeSize} = await import(fixture('s-edge-binaries.mjs'));
  const count = 40;
  const subprocess = fork(fixture('s-edge-binaries.mjs'), [String(count)], {buffer: false});
  const binaries = [];
  let small = 0;
  for await (const message of subprocess.getEachMessage()) {
    if (message.bin === undefined) small++;
    else binaries.push(message);
    if (small === count * 30) break;
  }
  assert.equal(binaries.length, count);
  for (const [i, {bin}] of binaries.entries()) {
    assert.equal(bin.length, edgeSize(i));
    const wrong = bin.findIndex((byte) => byte !== (i & 0xff));
    assert.equal(wrong, -1, `binary ${i} (${bin.length} bytes) changed at byte ${wrong}`);
  }
});

// A flushed batch of 1 MiB or more (a long string, a big object) is written from the coalescing buffer itself,
// which Rust keeps until the kernel took it all; the next batches queue behind it and the buffer is reused.
test('large strings and objects queued behind each other and behind small messages arrive intact and in order', async () => {
  const subprocess = fork(fixture('echo.mjs'), [], {buffer: false});
  const string = (n, seed) => Array.from({length: n}, (_, i) => String.fromCharCode(97 + ((i * 7 + seed) % 26))).join('');
  const messages = [
    string(3 * 1024 * 1024, 1),
    'small',
    {list: Array.from({length: 60_000}, (_, i) => ({i, name: `item ${i}`}))},
    string(2 * 1024 * 1024, 2),
    {strict: 'after'},
    string(1024 * 1024 + 1, 3),
  ];
  const replies = [];
  const reading = (async () => {
    for await (const message of subprocess.getEachMessage()) {
      replies.push(message);
      if (replies.length === messages.length * 2) break;
    }
  })();
  // Twice: the second round reuses the buffers the first one lent.
  for (let round = 0; round < 2; round++) {
    const sends = messages.map((message) => subprocess.sendMessage(message));
    await Promise.all(sends);
  }
  await reading;
  assert.equal(replies.length, messages.length * 2);
  for (const [i, reply] of replies.entries()) {
    assert.deepStrictEqual(reply, messages[i % messages.length], `message ${i}`);
  }
});

// A channel that closes hands its large writer buffer on to the next large message of any channel of this
// process (kept a second, on an unref'd timer): each child here gets messages of another size and content than
// the buffer last held, smaller (stale bytes past the end) and larger (it grows again), ASCII and not.
test("a closed channel's large writer buffer serves the next channels' large messages intact, and holds nothing open", async () => {
  const timers = () => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;
  const before = timers();
  const text = (n, seed) => Array.from({length: n}, (_, i) => String.fromCharCode(97 + ((i * 5 + seed) % 26))).join('');
  const rounds = [
    [text(12 * 1024 * 1024, 1)],
    ['small', text(5 * 1024 * 1024, 2)],
    ['\u00e9t\u00e9 '.repeat(1024 * 1024), {after: true}],
    [text(20 * 1024 * 1024, 3)],
    [{big: text(10 * 1024 * 1024, 4), list: [1, 2, 3]}],
  ];
  for (const messages of rounds) {
    const subprocess = fork(fixture('echo.mjs'), [], {buffer: false});
    const replies = subprocess.getEachMessage()[Symbol.asyncIterator]();
    await Promise.all(messages.map((message) => subprocess.sendMessage(message)));
    for (const message of messages) {
      assert.deepStrictEqual((await replies.next()).value, message);
    }
    // Closing the channel hands its buffer on, to be dropped later by a timer that keeps nothing alive.
    subprocess.disconnect();
    assert.equal(timers(), before);
    await subprocess;
  }
});

// A batch that only a getEachMessage() loop listens to goes to it in one pass (Channel.readFrames); listeners
// added from that loop must still get every later message, and the loop every message, in order.
test("buffer: false: a 'message' listener added inside a getEachMessage() loop gets every later message, the loop all of them", async () => {
  const count = 2000;
  const subprocess = fork(fixture('s-two-bursts.mjs'), [String(count)], {buffer: false});
  const heard = [];
  const looped = [];
  for await (const message of subprocess.getEachMessage()) {
    looped.push(message);
    if (message === count - 1) {
      subprocess.on('message', (value) => heard.push(value));
      await subprocess.sendMessage('more');
    }
    if (looped.length === 2 * count) break;
  }
  assert.deepEqual(looped, Array.from({length: 2 * count}, (_, i) => i));
  assert.deepEqual(heard, Array.from({length: count}, (_, i) => count + i));
  const result = await subprocess;
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.ipcOutput, []);
});
