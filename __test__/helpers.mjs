// Shared by the tests: fixture paths and small waits on real processes.
import {setTimeout as delay} from 'node:timers/promises';

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
