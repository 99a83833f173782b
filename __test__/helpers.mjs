// Shared by the tests: fork/spawn that clean up after themselves, fixture paths, small waits on real processes.
import {after} from 'node:test';
import {setTimeout as delay} from 'node:timers/promises';
import * as nativeIpc from '../index.mjs';

// Every child a test file starts through these is killed when the file's tests are over, so that a failed
// assertion cannot leave one running (a pending receive or a 'message' listener keeps it alive) and hold
// the test process open until the runner is killed. Weak references, so that tracking them does not keep
// finished subprocesses from being garbage-collected (which a test checks).
const started = new Set();
const track = (subprocess) => {
  started.add(new WeakRef(subprocess));
  return subprocess;
};
after(() => {
  for (const ref of started) {
    const subprocess = ref.deref();
    if (subprocess && subprocess.exitCode === null && subprocess.signalCode === null) subprocess.kill('SIGKILL');
  }
});

export const fork = (...args) => track(nativeIpc.fork(...args));
export const spawn = (...args) => track(nativeIpc.spawn(...args));

export const fixture = (name) => new URL(`fixtures/${name}`, import.meta.url);

/** Resolves with the subprocess's result or failure, whichever comes. */
export const settle = (subprocess) =>
  Promise.resolve(subprocess).then(
    (result) => ({ok: true, result}),
    (error) => ({ok: false, error}),
  );

/** True when the process is still running after `ms` milliseconds. */
export const stillRunningAfter = async (subprocess, ms) => {
  await delay(ms);
  return subprocess.exitCode === null && subprocess.signalCode === null;
};

/** Collects a subprocess's stderr (started with stderr: 'pipe'). */
export const collectStderr = (subprocess) => {
  const chunks = [];
  subprocess.stderr.on('data', (chunk) => chunks.push(chunk));
  return () => Buffer.concat(chunks).toString();
};
