// npm run stress — leak checks of ipc-reliability.md §5 B13 at full count: 1000 Node children forked, each
// exchanging a message, leave the parent's descriptor count where it started and its memory flat.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {once} from 'node:events';
import {fork} from '../index.mjs';
import {openFds, rss, settleMemory} from '../__test__/fixtures/r-helpers.mjs';

const MiB = 1024 * 1024;

test('1000 forks and exits leave the open-fd count where it started, and RSS flat', {timeout: 10 * 60_000}, async (t) => {
  const idle = new URL('../__test__/fixtures/idle.mjs', import.meta.url);
  const run = async () => {
    const subprocess = fork(idle);
    const [{exitCode, ipcOutput}] = await Promise.all([subprocess, once(subprocess, 'close')]);
    assert.equal(exitCode, 0);
    assert.deepEqual(ipcOutput, ['ready']);
  };
  await run();
  const startFds = openFds();
  let warmRss;
  for (let batch = 0; batch < 50; batch++) {
    await Promise.all(Array.from({length: 20}, run));
    if (batch === 4) {
      await settleMemory();
      warmRss = rss();
    }
  }
  await settleMemory();
  t.diagnostic(`RSS after 100 forks ${(warmRss / MiB).toFixed(1)} MiB, after 1000 ${(rss() / MiB).toFixed(1)} MiB; fds ${startFds} → ${openFds()}`);
  assert.equal(openFds(), startFds);
  assert.ok(rss() - warmRss < 32 * MiB, `RSS grew by ${rss() - warmRss} bytes over 900 forks`);
});
