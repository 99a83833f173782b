// Starts worker.mjs, sends it three jobs, prints the answers, then waits for the worker to finish.
import {fork} from '../index.mjs';

const worker = fork(new URL('worker.mjs', import.meta.url));
for (const n of [1, 2, 3]) {
  const [answer] = await Promise.all([worker.getOneMessage(), worker.sendMessage({n})]);
  console.log(`${n}² = ${answer.square}`);
}
worker.disconnect();
const {exitCode, ipcOutput} = await worker;
console.log(`worker exited with code ${exitCode} after sending ${ipcOutput.length} messages`);
