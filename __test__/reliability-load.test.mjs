// ipc-reliability.md §5 A (2, 10, 11) and B (7, 8, 9, 14): floods both ways at once, many children at once,
// large payloads, and frames split at every offset. Nothing may be lost, duplicated, reordered or corrupted,
// nothing may deadlock, and memory must come back down. No timing is asserted.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {fork, fixture} from './helpers.mjs';
import {KIND, floodBothWays, frame, hello, largeRoundTrip, rawPeer, rss, settleMemory} from './fixtures/r-helpers.mjs';

const MiB = 1024 * 1024;

test('B7, B8: 1M small messages each way at the same time: all arrive, in order, and nothing stays allocated', async (t) => {
  const count = 1_000_000;
  await settleMemory();
  const before = rss();
  const heapBefore = process.memoryUsage();
  const outcome = await floodBothWays(count, 0, 10_000);
  await settleMemory();
  const growth = rss() - before;
  const heapAfter = process.memoryUsage();
  const retained = heapAfter.heapUsed + heapAfter.external - heapBefore.heapUsed - heapBefore.external;
  t.diagnostic(`1M each way: parent RSS ${(before / MiB).toFixed(1)} MiB before, ${((before + growth) / MiB).toFixed(1)} MiB after; JS heap + external retained ${(retained / MiB).toFixed(1)} MiB`);
  assert.deepEqual(outcome, {
    exitCode: 0,
    parent: {received: count, inOrder: true, intact: true},
    child: {received: count, inOrder: true, intact: true},
  });
  // Nothing the run allocated may stay reachable. RSS itself is bounded loosely: V8 keeps the pages of a heap
  // that grew during the burst for reuse (Node 24 more than Node 20) instead of returning them at once.
  assert.ok(retained < 16 * MiB, `the JS heap and external memory kept ${retained} bytes`);
  assert.ok(growth < 320 * MiB, `RSS grew by ${growth} bytes`);
});

test('B8: 16 KiB messages both ways at the same time (20k each way, 320 MiB): counts and contents match, no deadlock', async () => {
  const count = 20_000;
  assert.deepEqual(await floodBothWays(count, 16 * 1024, 256), {
    exitCode: 0,
    parent: {received: count, inOrder: true, intact: true},
    child: {received: count, inOrder: true, intact: true},
  });
});

test('B8: both sides queue 64 MiB before reading anything: both socket buffers fill, neither side deadlocks', async () => {
  // Nobody awaits a send until every send was made, so each side's kernel buffer fills while the other is busy.
  const count = 1024;
  assert.deepEqual(await floodBothWays(count, 64 * 1024, 0), {
    exitCode: 0,
    parent: {received: count, inOrder: true, intact: true},
    child: {received: count, inOrder: true, intact: true},
  });
});

test('B14: 100 children of one parent at once, each exchanging 10k messages each way: all correct, none crosses channels', async () => {
  const children = 100;
  const count = 10_000;
  const outcomes = await Promise.all(Array.from({length: children}, (_, id) => floodBothWays(count, 0, 1000, `child ${id}`)));
  for (const outcome of outcomes) {
    assert.deepEqual(outcome, {
      exitCode: 0,
      parent: {received: count, inOrder: true, intact: true},
      child: {received: count, inOrder: true, intact: true},
    });
  }
});

test('A2: 1000 sends started together (Promise.all) arrive in call order and resolve in call order', async () => {
  const subprocess = fork(fixture('echo.mjs'), [], {buffer: false});
  const resolved = [];
  const replies = [];
  const receiving = (async () => {
    for await (const message of subprocess.getEachMessage()) {
      replies.push(message);
      if (replies.length === 1000) {
        break;
      }
    }
  })();
  await Promise.all(Array.from({length: 1000}, (_, i) => subprocess.sendMessage(i).then(() => resolved.push(i))));
  await receiving;
  const expected = Array.from({length: 1000}, (_, i) => i);
  assert.deepEqual(resolved, expected);
  assert.deepEqual(replies, expected);
  await subprocess;
});

test('B9: a 64 MiB Buffer makes the round trip byte-identical, with the parent\'s peak RSS under 3× its size', async () => {
  await largeRoundTrip(Buffer.alloc(64 * MiB, 0x5a));
});

test('B9: a 64 MiB string makes the round trip identical, with the parent\'s peak RSS under 3× its size', async () => {
  await largeRoundTrip('ü'.repeat(32 * MiB));
});

test('A10, A11: a stream written one byte at a time (every header and UTF-8 sequence split) gives the same messages', async () => {
  const {Writer, encodeAdvanced} = await import('../lib/codec.js');
  const values = ['héllo wörld ✓ 𝄞', {n: 1, s: 'ß'.repeat(40), list: [1, 2.5, -3, null, true]}, Buffer.from([0, 1, 2, 255]), 'x'.repeat(300), 42];
  const frames = values.map((value) => {
    const writer = new Writer(1024);
    encodeAdvanced(writer, value);
    return frame(KIND.message, Buffer.from(writer.buf.subarray(0, writer.pos)));
  });
  const {exitCode, ipcOutput} = await rawPeer(Buffer.concat([hello(), ...frames]), 'eof', {}, 'bytewise');
  assert.equal(exitCode, 0);
  assert.deepEqual(ipcOutput, values);
});

test('A11: 10k small frames arriving in one read each give 10k messages, exactly once', async () => {
  const {Writer, encodeAdvanced} = await import('../lib/codec.js');
  const writer = new Writer(1024);
  const frames = [];
  for (let i = 0; i < 10_000; i++) {
    writer.pos = 0;
    encodeAdvanced(writer, i);
    frames.push(frame(KIND.message, Buffer.from(writer.buf.subarray(0, writer.pos))));
  }
  const {ipcOutput} = await rawPeer(Buffer.concat([hello(), ...frames]), 'eof');
  assert.deepEqual(ipcOutput, Array.from({length: 10_000}, (_, i) => i));
});
