#!/usr/bin/env node
// Runs the Node test suite under other Node.js majors with the addon already built here: one binary (Node-API
// is ABI-stable) must pass on every Node that `engines` admits.
//
//   npm run test:node-versions            # Node 22 and 24
//   npm run test:node-versions -- 24 26   # the majors given
//
// Each Node comes from the npm registry's `node` package, installed once into node_modules/.cache (reused
// by later runs). The suite runs with that Node first on PATH, so that subprocesses started by name, and npm in
// the packaging test, use it too. The Rust tests and the type tests do not depend on Node and are not rerun.
import {spawnSync} from 'node:child_process';
import {existsSync, mkdirSync, readdirSync} from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const majors = process.argv.length > 2 ? process.argv.slice(2) : ['22', '24'];
const cache = path.join(root, 'node_modules', '.cache', 'native-ipc-node');
const RUN_TIMEOUT = 20 * 60_000;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

const fail = (message) => {
  console.error(`test:node-versions: ${message}`);
  process.exit(1);
};

for (const major of majors) {
  if (!/^\d+$/.test(major)) {
    fail(`a Node.js major version is a number, not ${JSON.stringify(major)}.`);
  }
}
if (!existsSync(path.join(root, 'binding.js'))) {
  fail('the addon is not built: run `npm run build` first.');
}

const versionOf = (binary) => spawnSync(binary, ['--version'], {encoding: 'utf8'}).stdout?.trim();

/** The path of a Node binary of the given major, installing it from the registry when needed. */
const nodeBinary = (major) => {
  const prefix = path.join(cache, major);
  const binary = path.join(prefix, 'node_modules', 'node', 'bin', 'node');
  if (existsSync(binary) && versionOf(binary)?.startsWith(`v${major}.`)) {
    return binary;
  }
  mkdirSync(prefix, {recursive: true});
  console.log(`test:node-versions: installing node@${major} into ${path.relative(root, prefix)}`);
  const install = spawnSync(
    npm,
    ['install', '--prefix', prefix, '--no-package-lock', '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `node@${major}`],
    {stdio: 'inherit', timeout: 10 * 60 * 1000},
  );
  if (install.status !== 0 || !existsSync(binary)) {
    fail(`could not install node@${major} from the npm registry.`);
  }
  return binary;
};

const testFiles = readdirSync(path.join(root, '__test__'))
  .filter((name) => name.endsWith('.test.mjs'))
  .sort()
  .map((name) => path.join('__test__', name));

const outcomes = [];
for (const major of majors) {
  const binary = nodeBinary(major);
  const version = versionOf(binary);
  console.log(`\ntest:node-versions: Node ${version} (${path.relative(root, binary)})`);
  const run = spawnSync(binary, ['--test', ...testFiles], {
    cwd: root,
    stdio: 'inherit',
    env: {...process.env, PATH: `${path.dirname(binary)}${path.delimiter}${process.env.PATH}`},
    // A hung test must not hold CI until its own limit: the whole suite gets this long per Node.
    timeout: RUN_TIMEOUT,
    killSignal: 'SIGKILL',
  });
  if (run.error?.code === 'ETIMEDOUT') {
    console.error(`test:node-versions: the suite under Node ${version} did not finish in ${RUN_TIMEOUT / 60_000} minutes.`);
  }
  outcomes.push({version, ok: run.status === 0});
}

console.log('\ntest:node-versions:');
for (const {version, ok} of outcomes) {
  console.log(`  Node ${version}: ${ok ? 'passed' : 'FAILED'}`);
}
if (outcomes.some(({ok}) => !ok)) {
  process.exit(1);
}
