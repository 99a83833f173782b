// The package as users get it: `scripts/pack.mjs` packs the main package and the linux-x64-gnu platform
// package (the addon built here, copied into a staging copy of npm/linux-x64-gnu), `npm install --offline`
// puts both tarballs into a new, empty project, and real processes run there: an ESM parent with a CommonJS
// child, and a TypeScript pair compiled by tsc. Every command has a time limit; nothing is timed.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const PLATFORM = 'linux-x64-gnu';
const PLATFORM_PACKAGE = `native-ipc-${PLATFORM}`;
const COMMAND_TIMEOUT = 120_000;
const supported = process.platform === 'linux' && process.arch === 'x64';

// npm sets npm_* variables for the scripts it runs (`npm test`); the npm started here must read only its own
// project, so none of them is passed on.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

/** Runs a command to completion; resolves with its output, or rejects with an error that shows it. */
const run = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {encoding: 'utf8', timeout: COMMAND_TIMEOUT, maxBuffer: 16 * 1024 * 1024, env: cleanEnv, ...options},
      (error, stdout, stderr) => {
        if (error) {
          error.message += `\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
          reject(error);
        } else {
          resolve({stdout, stderr});
        }
      },
    );
  });

let work;
let project;
let tarballs;

before(async () => {
  if (!supported) {
    return;
  }
  work = await mkdtemp(path.join(os.tmpdir(), 'native-ipc-package-'));
  const {stdout} = await run(process.execPath, [path.join(root, 'scripts', 'pack.mjs'), path.join(work, 'tarballs')]);
  tarballs = JSON.parse(stdout);
  project = path.join(work, 'project');
  await mkdir(project);
  await writeFile(path.join(project, 'package.json'), `${JSON.stringify({name: 'consumer', version: '1.0.0', private: true}, null, 2)}\n`);
  // --offline: the two tarballs are all the project needs; the registry is never asked.
  await run(npm, ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarballs.main, tarballs.platforms[PLATFORM]], {
    cwd: project,
  });
});

after(async () => {
  if (work !== undefined) {
    await rm(work, {recursive: true, force: true});
  }
});

const options = {skip: supported ? false : 'the prebuilt package is for linux-x64 only', timeout: 5 * 60_000};

test('the tarballs carry the JS, the types and the loader, and the binary only in the platform package', options, async () => {
  const installed = path.join(project, 'node_modules', 'native-ipc');
  for (const file of ['package.json', 'index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'lib/native.js', 'README.md']) {
    assert.ok(existsSync(path.join(installed, file)), file);
  }
  const files = await readdir(installed);
  assert.deepEqual(
    files.filter((name) => name.endsWith('.node') || ['src', '__test__', 'target', 'npm', 'Cargo.toml'].includes(name)),
    [],
  );
  // Of the scripts, only the code cache writer, which the package's postinstall runs.
  assert.deepEqual((await readdir(path.join(installed, 'scripts'))).sort(), ['code-cache-child.mjs', 'code-cache.js']);
  const platformFiles = await readdir(path.join(project, 'node_modules', PLATFORM_PACKAGE));
  assert.deepEqual(platformFiles.sort(), ['README.md', `native-ipc.${PLATFORM}.node`, 'package.json']);
});

test('an ESM parent forks a CommonJS child, both importing the installed package', options, async () => {
  await writeFile(
    path.join(project, 'parent.mjs'),
    `import {createRequire} from 'node:module';
import nativeIpc, {fork} from 'native-ipc';

const require = createRequire(import.meta.url);
const child = fork(new URL('child.cjs', import.meta.url), ['from-parent']);
const [reply] = await Promise.all([
  child.getOneMessage(),
  child.sendMessage({n: 21, bytes: Buffer.from('hi'), when: new Date(0), tags: new Set(['a'])}),
]);
const result = await child;
console.log(JSON.stringify({
  reply,
  exitCode: result.exitCode,
  ipcOutput: result.ipcOutput.length,
  sameModule: nativeIpc === require('native-ipc') && fork === require('native-ipc').fork,
  binaries: Object.keys(require.cache).filter((file) => file.endsWith('.node')),
}));
`,
  );
  await writeFile(
    path.join(project, 'child.cjs'),
    `'use strict';
const {getOneMessage, sendMessage} = require('native-ipc');

(async () => {
  const message = await getOneMessage();
  await sendMessage({
    doubled: message.n * 2,
    buffer: Buffer.isBuffer(message.bytes) && message.bytes.toString(),
    date: message.when instanceof Date && message.when.getTime(),
    set: message.tags instanceof Set && [...message.tags],
    argv: process.argv.slice(2),
    entry: require.resolve('native-ipc'),
  });
})();
`,
  );
  const {stdout} = await run(process.execPath, ['parent.mjs'], {cwd: project});
  const output = JSON.parse(stdout);
  assert.deepEqual(output.reply, {
    doubled: 42,
    buffer: 'hi',
    date: 0,
    set: ['a'],
    argv: ['from-parent'],
    entry: path.join(project, 'node_modules', 'native-ipc', 'index.js'),
  });
  assert.equal(output.exitCode, 0);
  assert.equal(output.ipcOutput, 1);
  assert.equal(output.sameModule, true);
  assert.deepEqual(output.binaries, [path.join(project, 'node_modules', PLATFORM_PACKAGE, `native-ipc.${PLATFORM}.node`)]);
});

test("the install wrote native-ipc's code cache for this Node and this directory: a child serves its modules from it, and its stack traces name the installed files", options, async () => {
  const installed = path.join(project, 'node_modules', 'native-ipc');
  const cacheFile = `node-${process.version}-v8-${process.versions.v8}-${process.arch}.bin`;
  assert.deepEqual(await readdir(path.join(installed, 'code-cache')), [cacheFile]);
  await writeFile(
    path.join(project, 'cache-parent.mjs'),
    `import {fork} from 'native-ipc';
const reports = [];
for (const file of ['cache-child.cjs', 'cache-child.mjs']) {
  const child = fork(new URL(file, import.meta.url));
  reports.push(await child.getOneMessage());
  await child;
}
console.log(JSON.stringify(reports));
`,
  );
  await writeFile(
    path.join(project, 'cache-child.cjs'),
    `'use strict';
const {sendMessage} = require('native-ipc');
const loader = Object.values(require.cache).find((module) => module.filename.endsWith('/lib/load.js'));
(async () => {
  let stack;
  try { await sendMessage('x', {strict: 'yes'}); } catch (error) { stack = error.stack; }
  await sendMessage({outcomes: loader.exports.outcomes, stack});
})();
`,
  );
  // An ES module child: its preload, native-ipc's index.mjs, finds the addon in the platform package too, and
  // runs lib/load.js from the cache.
  await writeFile(
    path.join(project, 'cache-child.mjs'),
    `import {createRequire} from 'node:module';
import {sendMessage} from 'native-ipc';
const {cache} = createRequire(import.meta.url);
const loader = Object.values(cache).find((module) => module.filename.endsWith('/lib/load.js'));
await sendMessage({outcomes: loader.exports.outcomes, addons: Object.keys(cache).filter((file) => file.endsWith('.node'))});
`,
  );
  const {stdout} = await run(process.execPath, ['cache-parent.mjs'], {cwd: project});
  const [report, esmReport] = JSON.parse(stdout);
  assert.equal(esmReport.outcomes['load.js'], 'cached', JSON.stringify(esmReport.outcomes));
  assert.deepEqual(Object.entries(esmReport.outcomes).filter(([, outcome]) => outcome !== 'cached'), []);
  assert.deepEqual(esmReport.addons, [path.join(project, 'node_modules', PLATFORM_PACKAGE, `native-ipc.${PLATFORM}.node`)]);
  const outcomes = Object.entries(report.outcomes);
  assert.ok(outcomes.length >= 7, JSON.stringify(report.outcomes));
  // lib/load.js finds the addon in the platform package itself, so lib/native.js is not even loaded.
  assert.deepEqual(outcomes.filter(([, outcome]) => outcome !== 'cached'), []);
  assert.equal(report.outcomes['native.js'], undefined);
  assert.ok(report.stack.includes(path.join(installed, 'lib', 'validate.js')), report.stack);
});

test("a platform package of another version never takes the direct path: napi-rs's loader decides, and refuses it when told to", options, async () => {
  const manifest = path.join(project, 'node_modules', PLATFORM_PACKAGE, 'package.json');
  const original = await readFile(manifest, 'utf8');
  await writeFile(manifest, original.replace(/"version": "[^"]+"/, '"version": "0.0.1-other"'));
  try {
    const failure = await run(process.execPath, ['-e', "require('native-ipc')"], {
      cwd: project,
      env: {...cleanEnv, NAPI_RS_ENFORCE_VERSION_CHECK: '1'},
    }).then(
      () => assert.fail('native-ipc loaded a platform package of another version'),
      (error) => error,
    );
    assert.match(failure.message, /cannot load its native addon/);
    assert.match(failure.message, /version mismatch, expected [^ ]+ but got 0\.0\.1-other/);
    // The same through \`import\`, where native-ipc's index.mjs looks for the addon first, by the same rule.
    const esmFailure = await run(process.execPath, ['--input-type=module', '-e', "await import('native-ipc')"], {
      cwd: project,
      env: {...cleanEnv, NAPI_RS_ENFORCE_VERSION_CHECK: '1'},
    }).then(
      () => assert.fail('native-ipc imported a platform package of another version'),
      (error) => error,
    );
    assert.match(esmFailure.message, /version mismatch, expected [^ ]+ but got 0\.0\.1-other/);
    // napi-rs's default is to load it anyway; native-ipc then goes through that loader.
    const {stdout} = await run(process.execPath, ['-e', "console.log(typeof require('native-ipc').fork)"], {cwd: project});
    assert.equal(stdout.trim(), 'function');
  } finally {
    await writeFile(manifest, original);
  }
});

test('a TypeScript parent and child compile against the installed types and run', options, async () => {
  const sources = path.join(project, 'ts');
  await mkdir(sources);
  await writeFile(
    path.join(sources, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        lib: ['es2023'],
        // The consumer project installs only the two tarballs; Node's types come from this repository.
        typeRoots: [path.join(root, 'node_modules', '@types')],
        types: ['node'],
        skipLibCheck: true,
        outDir: 'dist',
        rootDir: '.',
      },
      include: ['*.mts', '*.cts'],
    }),
  );
  await writeFile(
    path.join(sources, 'parent.mts'),
    `import {fork, type Result} from 'native-ipc';

type Task = {kind: 'square'; n: number};
type Answer = {kind: 'answer'; square: number} | {kind: 'log'; text: string};

const isAnswer = (message: Answer): message is Extract<Answer, {kind: 'answer'}> => message.kind === 'answer';

const child = fork(new URL('child.cjs', import.meta.url), {serialization: 'json'});
// The type guard narrows the result to the answer.
const answer = child.getOneMessage({filter: isAnswer});
await child.sendMessage<Task>({kind: 'square', n: 12});
const {square} = await answer;
const result: Result<'json'> = await child;
console.log(JSON.stringify({square, exitCode: result.exitCode, ipcOutput: result.ipcOutput}));
`,
  );
  await writeFile(
    path.join(sources, 'child.cts'),
    `import {getOneMessage, sendMessage} from 'native-ipc';

type Task = {kind: 'square'; n: number};

const main = async (): Promise<void> => {
  const task = await getOneMessage<Task>();
  await sendMessage({kind: 'log', text: 'working'});
  await sendMessage({kind: 'answer', square: task.n ** 2});
};

void main();
`,
  );
  await run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', sources], {cwd: project});
  const {stdout} = await run(process.execPath, [path.join(sources, 'dist', 'parent.mjs')], {cwd: project});
  assert.deepEqual(JSON.parse(stdout), {
    square: 144,
    exitCode: 0,
    ipcOutput: [
      {kind: 'log', text: 'working'},
      {kind: 'answer', square: 144},
    ],
  });
});

test('only the entry point is exported', options, async () => {
  const {stdout} = await run(
    process.execPath,
    [
      '-e',
      `let code;
try { require('native-ipc/lib/parent.js'); } catch (error) { code = error.code; }
console.log(JSON.stringify({code, version: require('native-ipc/package.json').version}));`,
    ],
    {cwd: project},
  );
  assert.deepEqual(JSON.parse(stdout), {code: 'ERR_PACKAGE_PATH_NOT_EXPORTED', version: '0.1.0'});
});

test('without the platform package, loading fails with an error naming it and how to build from source', options, async () => {
  const installed = path.join(project, 'node_modules', PLATFORM_PACKAGE);
  const aside = path.join(work, 'aside');
  await rename(installed, aside);
  try {
    const failure = await run(process.execPath, ['-e', "require('native-ipc')"], {cwd: project}).then(
      () => assert.fail('native-ipc loaded without its binary'),
      (error) => error,
    );
    assert.match(failure.message, new RegExp(`optional dependency ${PLATFORM_PACKAGE}, which carries the binary`));
    assert.match(failure.message, /build the addon from source/);
    assert.match(failure.message, /NAPI_RS_NATIVE_LIBRARY_PATH/);

    // The way out for a platform without a prebuilt binary: point the loader at a binary built from source.
    const {stdout} = await run(process.execPath, ['-e', "console.log(typeof require('native-ipc').fork)"], {
      cwd: project,
      env: {...cleanEnv, NAPI_RS_NATIVE_LIBRARY_PATH: path.join(aside, `native-ipc.${PLATFORM}.node`)},
    });
    assert.equal(stdout.trim(), 'function');
  } finally {
    await rename(aside, installed);
  }
});
