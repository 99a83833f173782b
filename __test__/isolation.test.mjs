// The channel reaches only the intended child, and the addon works in several threads at once.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {Worker} from 'node:worker_threads';
import {once} from 'node:events';
import {fork, fixture} from './helpers.mjs';

test('the env var is removed and the descriptor is not inherited by a grandchild', async () => {
  const {ipcOutput} = await fork(fixture('grandchild.mjs'));
  assert.deepEqual(ipcOutput, [{ownEnv: null, grandchild: {env: null, sockets: []}}]);
});

test('the parent keeps no descriptor of its own per child after it exits', async () => {
  const {readdirSync} = await import('node:fs');
  const count = () => readdirSync('/proc/self/fd').length;
  await fork(fixture('idle.mjs'));
  const before = count();
  for (let i = 0; i < 10; i++) {
    await fork(fixture('idle.mjs'));
  }
  assert.equal(count(), before);
});

test('two worker threads each run their own subprocess at once', async () => {
  const workers = [1, 2].map((id) => new Worker(fixture('worker.mjs'), {workerData: {id}}));
  const exits = workers.map((worker) => once(worker, 'exit'));
  const replies = await Promise.all(workers.map(async (worker) => (await once(worker, 'message'))[0]));
  assert.deepEqual(replies, [
    {reply: {worker: 1}, result: 0},
    {reply: {worker: 2}, result: 0},
  ]);
  assert.deepEqual(
    (await Promise.all(exits)).map(([code]) => code),
    [0, 0],
  );
});

test('terminating a worker with its channel open does not harm the process', async () => {
  const worker = new Worker(fixture('worker.mjs'), {workerData: {id: 3, leaveOpen: true}});
  const [{reply, pid}] = await once(worker, 'message');
  assert.deepEqual(reply, {worker: 3});
  await worker.terminate();
  // The subprocess sees its channel closed and its loop ends. Nobody reaps it once its parent thread is
  // gone, so "exited" means gone or a zombie.
  const {readFileSync} = await import('node:fs');
  const exited = () => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'Z';
    } catch {
      return true;
    }
  };
  for (let i = 0; i < 200 && !exited(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(exited());
  // The main thread still works.
  const {exitCode} = await fork(fixture('idle.mjs'));
  assert.equal(exitCode, 0);
});

test('regression: a parent started with node -e forks its script, not its own -e code again', async () => {
  const {execFileSync} = await import('node:child_process');
  const {fileURLToPath} = await import('node:url');
  const code = `import(${JSON.stringify(new URL('../index.mjs', import.meta.url).href)})
    .then(({fork}) => fork(${JSON.stringify(fileURLToPath(fixture('idle.mjs')))}, [], {stdio: 'ignore'}))
    .then(({ipcOutput}) => process.stdout.write(JSON.stringify(ipcOutput)))`;
  const output = execFileSync(process.execPath, ['-e', code], {timeout: 30_000, killSignal: 'SIGKILL'});
  assert.equal(output.toString(), '["ready"]');
});

test('a parent started with node --input-type=module -e forks an ES module script (the flag, for -e code only, is not passed on)', async () => {
  const {execFileSync} = await import('node:child_process');
  const {fileURLToPath} = await import('node:url');
  const code = `import {fork} from ${JSON.stringify(new URL('../index.mjs', import.meta.url).href)};
    const {ipcOutput} = await fork(${JSON.stringify(fileURLToPath(fixture('idle.mjs')))}, [], {stdio: 'ignore'});
    process.stdout.write(JSON.stringify(ipcOutput));`;
  for (const flags of [['--input-type=module'], ['--input-type', 'module']]) {
    const output = execFileSync(process.execPath, [...flags, '-e', code], {timeout: 30_000, killSignal: 'SIGKILL'});
    assert.equal(output.toString(), '["ready"]', flags.join(' '));
  }
});
