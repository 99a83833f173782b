// npm run stress — the full sizes of ipc-reliability.md §5 B8 and B9, which `npm test` runs scaled down
// (__test__/reliability-load.test.mjs): 200k × 16 KiB each way at once, and single 256 MiB messages.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {floodBothWays, largeRoundTrip} from '../__test__/fixtures/r-helpers.mjs';

const MiB = 1024 * 1024;
const LIMIT = {timeout: 10 * 60_000};

test('B8: 200k messages of 16 KiB each way at the same time (3.2 GB each way): counts and contents match, no deadlock', LIMIT, async () => {
  const count = 200_000;
  assert.deepEqual(await floodBothWays(count, 16 * 1024, 256), {
    exitCode: 0,
    parent: {received: count, inOrder: true, intact: true},
    child: {received: count, inOrder: true, intact: true},
  });
});

test("B9: a 256 MiB Buffer makes the round trip byte-identical, with the parent's peak RSS under 3× its size", LIMIT, async () => {
  await largeRoundTrip(Buffer.alloc(256 * MiB, 0xa5));
});

test("B9: a 256 MiB string makes the round trip identical, with the parent's peak RSS under 3× its size", LIMIT, async () => {
  await largeRoundTrip('ü'.repeat(128 * MiB));
});
