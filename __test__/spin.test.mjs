// Waiting awake for answers (src/spin.rs): after a write the loop polls without sleeping for a short window,
// so that a quick answer is read at once. Real children, real round trips; the counters come from the child's
// own channel.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {setTimeout as delay} from 'node:timers/promises';
import {availableParallelism} from 'node:os';
import {fork, fixture, collectStderr} from './helpers.mjs';

// On one CPU waiting awake would only take time from the peer: it is off, and the tests that need it are skipped.
const oneCpu = availableParallelism() < 2 && 'one CPU: waiting awake is off';

const ARMED = 0;
const HITS = 1;
const MISSES = 2;
const SKIPPED = 3;

const start = (spinEnv, options = {}) => {
  const env = {...process.env};
  delete env.NATIVE_IPC_SPIN_US;
  if (spinEnv !== undefined) {
    env.NATIVE_IPC_SPIN_US = spinEnv;
  }
  const subprocess = fork(fixture('spin-echo.mjs'), [], {env, buffer: false, ...options});
  const messages = subprocess.getEachMessage()[Symbol.asyncIterator]();
  const next = async () => (await messages.next()).value;
  const stats = async () => {
    subprocess.sendMessage({k: 'stats'});
    return next();
  };
  const finish = async () => {
    await subprocess.sendMessage({k: 'exit'});
    await messages.return();
    return subprocess;
  };
  return {subprocess, next, stats, finish};
};

const pingPong = async (child, count) => {
  for (let i = 0; i < count; i++) {
    child.subprocess.sendMessage({k: 't', i});
    const reply = await child.next();
    assert.deepEqual(reply, {k: 't', i}, `round trip ${i}`);
  }
};

test('a quick ping-pong is answered inside the window, in order, while the loop keeps turning (timers fire)', {skip: oneCpu}, async () => {
  // A window of 1 ms: every answer of a running ping-pong comes within it, even on a loaded machine.
  const child = start('1000');
  await pingPong(child, 3000);
  const {spin, ticks} = await child.stats();
  assert.ok(spin[ARMED] >= 1, `windows opened: ${spin}`);
  assert.ok(spin[HITS] >= 1, `windows answered: ${spin}`);
  // The child never sleeps between round trips, yet its 1 ms interval ran: waiting awake starves nothing.
  assert.ok(ticks >= 2, `the interval fired ${ticks} times during 3000 round trips`);
  const result = await child.finish();
  assert.equal(result.exitCode, 0);
});

test('NATIVE_IPC_SPIN_US=0 turns waiting awake off; messages flow as before', async () => {
  const child = start('0');
  await pingPong(child, 500);
  const {spin} = await child.stats();
  assert.deepEqual(spin, [0, 0, 0, 0]);
  await child.finish();
});

test('a peer that answers slowly makes the window open ever more rarely (misses back off)', {skip: oneCpu}, async () => {
  const child = start('200');
  const rounds = 12;
  for (let i = 0; i < rounds; i++) {
    child.subprocess.sendMessage({k: 't', i});
    assert.deepEqual(await child.next(), {k: 't', i});
    // Far longer than the window: every window the child opens after its echo passes unanswered.
    await delay(5);
  }
  const {spin} = await child.stats();
  // Each echo was one chance to wait: taken (and missed) or let go by.
  assert.equal(spin[ARMED] + spin[SKIPPED], rounds, `counters: ${spin}`);
  assert.equal(spin[HITS], 0, `counters: ${spin}`);
  assert.equal(spin[MISSES], spin[ARMED], `counters: ${spin}`);
  assert.ok(spin[SKIPPED] >= 1, `no chance was let go by: ${spin}`);
  await child.finish();
});

for (const bad of ['abc', '-5', '5000', '1.5', '']) {
  test(`a bad NATIVE_IPC_SPIN_US (${JSON.stringify(bad)}) is warned about, the default used, and the channel works`, async () => {
    const child = start(bad, {stdio: ['ignore', 'inherit', 'pipe']});
    const stderr = collectStderr(child.subprocess);
    await pingPong(child, 50);
    const {spin} = await child.stats();
    // The default window is used: on, unless this machine has one CPU.
    assert.equal(spin[ARMED] + spin[SKIPPED] >= 1, !oneCpu, `counters: ${spin}`);
    await child.finish();
    const warning = `NATIVE_IPC_SPIN_US=${JSON.stringify(bad)} is not a whole number of microseconds from 0 to 1000 (0 turns waiting awake for answers off); using 50.`;
    assert.ok(stderr().includes(warning), `stderr: ${stderr()}`);
  });
}
