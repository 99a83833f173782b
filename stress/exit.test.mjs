// npm run stress — C16 of ipc-reliability.md §5 at its full count: messages of 1 KiB, 256 KiB and 8 MiB sent right
// before process.exit() arrive in 100 runs of 100, with the send awaited and with process.exit() called right
// after a sendMessage() nobody awaited. (`npm test` runs 5 of each.)
import {test} from 'node:test';
import {sendThenExit} from '../__test__/fixtures/r-helpers.mjs';

const RUNS = 100;
const AT_ONCE = 4;

for (const mode of ['await', 'naive']) {
  for (const [count, size] of [
    [50, 1024],
    [8, 256 * 1024],
    [3, 8 * 1024 * 1024],
  ]) {
    test(`C16: ${count} messages of ${size} bytes, then process.exit() (${mode}): delivered in ${RUNS} of ${RUNS} runs`, {timeout: 10 * 60_000}, async () => {
      for (let run = 0; run < RUNS; run += AT_ONCE) {
        await Promise.all(Array.from({length: AT_ONCE}, () => sendThenExit(count, size, mode)));
      }
    });
  }
}
