// npm run stress — B13 of ipc-reliability.md §5: a 12M-message soak (1M each way at the same time in each of 6
// phases, mixed sizes) whose RSS and descriptor counts must stay flat in both processes. Both are sampled between
// phases, when nothing is in flight; start and end figures are logged.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {fork} from '../index.mjs';
import {openFds, rss, settleMemory} from '../__test__/fixtures/r-helpers.mjs';

const MiB = 1024 * 1024;
const PHASES = 6;
const PER_PHASE = 1_000_000;
// The first phases are the warm-up: V8 sizes its heap to the allocation rate, so RSS settles a step or two
// higher and stays there (24M messages: 108, 129, then 127-137 MiB to phase 12; on a loaded machine the steps
// came later: 87, 114, 134, 135, 149, 150 MiB). A leak grows with every phase instead.
const WARM_PHASES = 3;
// Growth allowed from the end of the warm-up to the end of the last phase: a leak of even 10 bytes a message
// would be 60 MiB here (3 phases of 2M messages).
const FLAT = 32 * MiB;

/** The same mix the child sends (r-soak.mjs): mostly numbers, every 100th 4 KiB, every 10,000th 256 KiB. */
const soakMessage = (i) => {
  const size = i % 10_000 === 0 ? 256 * 1024 : i % 100 === 0 ? 4096 : 0;
  return size === 0 ? i : {i, data: Buffer.alloc(size, i & 0xff)};
};
const indexOf = (message) => (typeof message === 'number' ? message : message.i);

const describe = (samples) =>
  `RSS ${(samples[WARM_PHASES - 1].rss / MiB).toFixed(1)} MiB after phase ${WARM_PHASES}, ${(samples.at(-1).rss / MiB).toFixed(1)} MiB after phase ${samples.length}; ` +
  `fds ${samples.map(({fds}) => fds).join(' ')}; RSS by phase ${samples.map(({rss: bytes}) => (bytes / MiB).toFixed(0)).join(' ')} MiB`;

test(`B13: ${(2 * PHASES * PER_PHASE) / 1e6}M messages (both ways at once, mixed sizes): RSS and descriptors stay flat in parent and child`, {timeout: 10 * 60_000}, async (t) => {
  await settleMemory();
  const start = {rss: rss(), fds: openFds()};
  const subprocess = fork(new URL('../__test__/fixtures/r-soak.mjs', import.meta.url), [String(PHASES), String(PER_PHASE)], {
    buffer: false,
    execArgv: ['--expose-gc'],
  });
  t.after(() => subprocess.kill('SIGKILL'));
  const messages = subprocess.getEachMessage();
  const parentSamples = [];
  const childSamples = [];
  let inOrder = true;
  for (let phase = 0; phase < PHASES; phase++) {
    const sending = (async () => {
      let last = subprocess.sendMessage('go');
      for (let i = 0; i < PER_PHASE; i++) {
        last = subprocess.sendMessage(soakMessage(i));
        if (i % 10_000 === 9_999) {
          await last;
        }
      }
      await last;
    })();
    for (let received = 0; received < PER_PHASE; received++) {
      const {value} = await messages.next();
      inOrder &&= indexOf(value) === received;
    }
    await sending;
    const {value: report} = await messages.next();
    childSamples.push(report.sample);
    await settleMemory();
    parentSamples.push({rss: rss(), fds: openFds()});
  }
  // Ending the loop disconnects; the child waits for that before it exits.
  await messages.return();
  assert.equal((await subprocess).exitCode, 0);
  assert.ok(inOrder, 'the parent received every message in order');
  assert.ok(childSamples.at(-1).inOrder, 'the child received every message in order');

  for (const [name, samples] of [
    ['parent', parentSamples],
    ['child', childSamples],
  ]) {
    t.diagnostic(`${name}: ${describe(samples)}`);
    const growth = samples.at(-1).rss - samples[WARM_PHASES - 1].rss;
    assert.ok(growth < FLAT, `${name} RSS grew by ${growth} bytes from phase ${WARM_PHASES} to phase ${PHASES}`);
    assert.equal(samples.at(-1).fds, samples[0].fds, `${name} descriptors`);
  }
  // Once the child is gone, the parent holds no descriptor more than before it.
  await settleMemory();
  t.diagnostic(`parent before the soak: RSS ${(start.rss / MiB).toFixed(1)} MiB, ${start.fds} fds; after: ${(rss() / MiB).toFixed(1)} MiB, ${openFds()} fds`);
  assert.equal(openFds(), start.fds);
});
