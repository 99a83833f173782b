// native-ipc's modules load from V8's code cache (lib/load.js, written by scripts/code-cache.js at build time).
// Each test works on a copy of the package's JS in a temporary directory, with its own cache, and runs a real
// parent and child there: the child reports how each module was compiled, and answers over the channel.
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {after, before, test} from 'node:test';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const TIMEOUT = 60_000;
const work = mkdtempSync(path.join(os.tmpdir(), 'native-ipc-code-cache-'));
after(() => rmSync(work, {recursive: true, force: true}));

/** Runs node with `args` and resolves with its exit code (or the signal that ended it) and output. */
const runStatus = (args) =>
  new Promise((resolve) => {
    execFile(process.execPath, args, {encoding: 'utf8', timeout: TIMEOUT}, (error, stdout, stderr) => {
      resolve({code: error === null ? 0 : (error.code ?? error.signal), stdout, stderr});
    });
  });

/** Runs node with `args` and resolves with its output; rejects, showing the output, unless it exits with 0. */
const run = async (args) => {
  const {code, stdout, stderr} = await runStatus(args);
  if (code !== 0) {
    throw new Error(`node ${args.join(' ')} ended with ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
  }
  return stdout;
};

let copies = 0;
/** A copy of the package's JS (the addon linked, not copied) with a cache written for it. */
const copyPackage = async () => {
  const dir = path.join(work, `package-${copies++}`);
  for (const file of ['index.js', 'index.mjs', 'package.json', 'lib', 'scripts']) {
    cpSync(path.join(root, file), path.join(dir, file), {recursive: true});
  }
  symlinkSync(path.join(root, 'native-ipc.linux-x64-gnu.node'), path.join(dir, 'native-ipc.linux-x64-gnu.node'));
  // The child echoes one message, then reports how its modules were compiled and what a bad option says.
  writeFileSync(
    path.join(dir, 'child.cjs'),
    `const {sendMessage, getOneMessage} = require('./index.js');
(async () => {
  await sendMessage(await getOneMessage());
  let error, stack;
  try { await sendMessage('x', {strict: 'yes'}); } catch (e) { error = e.message; stack = e.stack; }
  await sendMessage({outcomes: require('./lib/load.js').outcomes, error, stack});
})();
`,
  );
  writeFileSync(
    path.join(dir, 'parent.mjs'),
    `import {fork} from './index.mjs';
const subprocess = fork(new URL('child.cjs', import.meta.url), {execArgv: JSON.parse(process.argv[2] ?? '[]')});
const payload = {k: 't', list: [1, 'two', Buffer.from('three')]};
const [echo] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(payload)]);
const report = await subprocess.getOneMessage();
await subprocess;
console.log(JSON.stringify({echoed: JSON.stringify(echo) === JSON.stringify(payload), ...report}));
`,
  );
  await run([path.join(dir, 'scripts', 'code-cache.js')]);
  return dir;
};

const exchange = async (dir, execArgv = []) => JSON.parse(await run([path.join(dir, 'parent.mjs'), JSON.stringify(execArgv)]));
const cacheFileOf = (dir) =>
  path.join(dir, 'code-cache', `node-${process.version}-v8-${process.versions.v8}-${process.arch}.bin`);

let pristine;
before(async () => {
  pristine = await copyPackage();
});

const CHILD_MODULES = ['channel.js', 'child.js', 'codec.js', 'errors.js', 'methods.js', 'validate.js'];

test('a child loads every native-ipc module from the cache that the build step wrote, and the channel works', async () => {
  const report = await exchange(pristine);
  assert.equal(report.echoed, true);
  for (const name of CHILD_MODULES) {
    assert.equal(report.outcomes[name], 'cached', name);
  }
  // The addon lies next to the package: lib/load.js loads it, and lib/native.js (the loader for anywhere else)
  // is never needed; nor, in a child that never gets a handle, lib/handles.js.
  assert.equal(report.outcomes['native.js'], undefined);
  assert.equal(report.outcomes['handles.js'], undefined);
  assert.deepEqual(
    Object.entries(report.outcomes).filter(([, outcome]) => outcome !== 'cached'),
    [],
  );
  assert.match(report.error, /`strict` option must be a boolean/);
});

/**
 * A copy of the package whose lib/validate.js says `words` where it said "must be a boolean", after its cache
 * was written; the exchange there, which must echo and have served codec.js from the cache while validate.js
 * compiled.
 */
const exchangeWithEditedValidate = async (words) => {
  const dir = await copyPackage();
  const file = path.join(dir, 'lib', 'validate.js');
  const before = readFileSync(file, 'utf8');
  const after = before.replace('must be a boolean', words);
  assert.notEqual(after, before);
  writeFileSync(file, after);
  const report = await exchange(dir);
  assert.equal(report.echoed, true);
  assert.equal(report.outcomes['validate.js'], 'compiled');
  assert.equal(report.outcomes['codec.js'], 'cached');
  return {file, before, after, report};
};

test('a module edited after the cache was written runs its new source, even at the same length', async () => {
  const {before, after, report} = await exchangeWithEditedValidate('must be a BOOLEAN');
  assert.equal(after.length, before.length);
  assert.match(report.error, /`strict` option must be a BOOLEAN/);
});

test('a module edited to hold non-ASCII text runs it as UTF-8, with the line numbers of its file', async () => {
  // native-ipc's own modules are ASCII and reach V8 as external Latin-1 strings (src/code_cache.rs); any other
  // source is decoded as UTF-8.
  const {file, after, report} = await exchangeWithEditedValidate('must be a booléen ✓');
  assert.match(report.error, /`strict` option must be a booléen ✓, not/);
  const line = after.split('\n').findIndex((text) => text.includes('booléen')) + 1;
  assert.ok(report.stack.includes(`${file}:${line}:`), report.stack);
});

test("a child's start-up leaves V8's young generation to the script: native-ipc's sources stay off V8's heap", async () => {
  // A fresh Node has 1 MiB of young generation before its first garbage collection. A child of fork() used
  // ~530 KiB more of it than a bare Node by the time its script ran, most of it native-ipc's module sources
  // (and the flat copy V8 made of each wrapped one), so that a script allocating ~60 KiB more before its
  // first message made a collection of everything the start-up left live. Now ~240 KiB.
  const probe = `const used = process.getBuiltinModule('node:v8').getHeapSpaceStatistics()
  .find((space) => space.space_name === 'new_space').space_used_size;`;
  writeFileSync(path.join(pristine, 'young-child.mjs'), `import {sendMessage} from './index.mjs';\n${probe}\nawait sendMessage(used);\n`);
  writeFileSync(path.join(pristine, 'young-bare.mjs'), `${probe}\nconsole.log(used);\n`);
  writeFileSync(
    path.join(pristine, 'young-parent.mjs'),
    `import {fork} from './index.mjs';
const subprocess = fork(new URL('young-child.mjs', import.meta.url));
const used = await subprocess.getOneMessage();
await subprocess;
console.log(used);
`,
  );
  const bare = Number(await run([path.join(pristine, 'young-bare.mjs')]));
  const child = Number(await run([path.join(pristine, 'young-parent.mjs')]));
  assert.ok(bare > 0 && child > 0, `${bare} ${child}`);
  assert.ok(child - bare < 384 * 1024, `native-ipc's start-up used ${((child - bare) / 1024).toFixed(0)} KiB of the young generation`);
});

test('a package moved after its cache was written names its own files in stack traces, and the channel works', async () => {
  const built = await copyPackage();
  const moved = path.join(work, `moved-${copies++}`);
  renameSync(built, moved);
  const report = await exchange(moved);
  assert.equal(report.echoed, true);
  assert.match(report.error, /`strict` option must be a boolean/);
  assert.ok(report.stack.includes(path.join(moved, 'lib', 'validate.js')), report.stack);
  assert.ok(!report.stack.includes(built), report.stack);
  // Where V8 keeps the file name it cached code under (Node 20) the moved copy compiles; elsewhere it is served.
  const outcomes = new Set(CHILD_MODULES.map((name) => report.outcomes[name]));
  assert.equal(outcomes.size, 1);
  assert.ok(outcomes.has('cached') || outcomes.has('compiled'), [...outcomes].join());
});

test('a cache file cut short is ignored: every module compiles and the channel works', async () => {
  const dir = await copyPackage();
  const file = cacheFileOf(dir);
  truncateSync(file, Math.floor(readFileSync(file).length / 2));
  const report = await exchange(dir);
  assert.equal(report.echoed, true);
  for (const name of CHILD_MODULES) {
    assert.equal(report.outcomes[name], 'compiled', name);
  }
});

test('a cache file that is not one is ignored', async () => {
  const dir = await copyPackage();
  writeFileSync(cacheFileOf(dir), 'not a cache');
  const report = await exchange(dir);
  assert.equal(report.echoed, true);
  assert.equal(report.outcomes['codec.js'], 'compiled');
});

test('code V8 refuses (a child run with other V8 flags) is not used: the modules compile and the channel works', async () => {
  const report = await exchange(pristine, ['--no-opt']);
  assert.equal(report.echoed, true);
  for (const name of CHILD_MODULES) {
    assert.equal(report.outcomes[name], 'rejected', name);
  }
  assert.match(report.error, /`strict` option must be a boolean/);
});

test('loaded into a vm context of its own (as Jest does), native-ipc runs in that context: objects and errors are of its realm', async () => {
  const report = JSON.parse(await run([path.join(root, '__test__', 'fixtures', 'other-context.cjs')]));
  assert.deepEqual(report.echo, {a: [1, 'two']});
  assert.equal(report.echoFromContext, true);
  assert.equal(report.errorFromContext, true);
  assert.match(report.error, /cannot be serialized/);
  assert.equal(report.outcomes['child.js'], 'required');
  assert.equal(report.outcomes['parent.js'], 'required');
});

test('an ESM child gets the API its preload loaded, the very object require() gives; another copy of the package gets its own', async () => {
  const other = await copyPackage();
  writeFileSync(
    path.join(pristine, 'esm-child.mjs'),
    `import {createRequire} from 'node:module';
import nativeIpc, {sendMessage} from './index.mjs';
const require = createRequire(import.meta.url);
const indexJsLoaded = require.resolve('./index.js') in require.cache;
const copy = (await import(process.argv[2])).default;
await sendMessage({
  indexJsLoaded,
  sameAsRequire: nativeIpc === require('./index.js') && sendMessage === nativeIpc.sendMessage,
  copyIsOwn: copy !== nativeIpc && copy.sendMessage !== nativeIpc.sendMessage,
  loadJs: require('./lib/load.js').outcomes['load.js'],
});
`,
  );
  writeFileSync(
    path.join(pristine, 'esm-parent.mjs'),
    `import {fork} from './index.mjs';
const subprocess = fork(new URL('esm-child.mjs', import.meta.url), [process.argv[2]]);
const report = await subprocess.getOneMessage();
await subprocess;
console.log(JSON.stringify(report));
`,
  );
  const report = JSON.parse(await run([path.join(pristine, 'esm-parent.mjs'), new URL(`file://${other}/index.mjs`).href]));
  // index.mjs, the preload, ran lib/load.js from the cache as well (the addon lies next to the package).
  assert.deepEqual(report, {indexJsLoaded: false, sameAsRequire: true, copyIsOwn: true, loadJs: 'cached'});
});

test('an ESM child whose lib/load.js was edited after the cache was written runs the new source', async () => {
  const dir = await copyPackage();
  const file = path.join(dir, 'lib', 'load.js');
  const before = readFileSync(file, 'utf8');
  // The same length: V8 alone would take code cached for the old source.
  const after = before.replace("outcomes['native.js'] = 'required';", "outcomes['native.js'] = 'REQUIRED';");
  assert.notEqual(after, before);
  writeFileSync(file, after);
  writeFileSync(
    path.join(dir, 'edited-child.mjs'),
    `import {createRequire} from 'node:module';
import {getOneMessage, sendMessage} from './index.mjs';
const {outcomes} = createRequire(import.meta.url)('./lib/load.js');
await sendMessage({echo: await getOneMessage(), loadJs: outcomes['load.js'], codec: outcomes['codec.js']});
`,
  );
  writeFileSync(
    path.join(dir, 'edited-parent.mjs'),
    `import {fork} from './index.mjs';
const subprocess = fork(new URL('edited-child.mjs', import.meta.url));
const [report] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage([1, 'two'])]);
await subprocess;
console.log(JSON.stringify(report));
`,
  );
  const report = JSON.parse(await run([path.join(dir, 'edited-parent.mjs')]));
  assert.deepEqual(report, {echo: [1, 'two'], loadJs: 'compiled', codec: 'cached'});
});

test("the package's postinstall step (--install) does nothing without the addon, and never fails an install", async () => {
  const dir = path.join(work, `bare-${copies++}`);
  for (const file of ['index.js', 'index.mjs', 'package.json', 'lib', 'scripts']) {
    cpSync(path.join(root, file), path.join(dir, file), {recursive: true});
  }
  const script = path.join(dir, 'scripts', 'code-cache.js');
  // A source checkout before `npm run build`: quietly nothing.
  assert.deepEqual(await runStatus([script, '--install']), {code: 0, stdout: '', stderr: ''});
  assert.equal(existsSync(path.join(dir, 'code-cache')), false);

  // With the addon, but a module that does not compile: one line says why, and no cache is left; a build fails.
  symlinkSync(path.join(root, 'native-ipc.linux-x64-gnu.node'), path.join(dir, 'native-ipc.linux-x64-gnu.node'));
  writeFileSync(path.join(dir, 'lib', 'result.js'), 'this is not JavaScript');
  const install = await runStatus([script, '--install']);
  assert.equal(install.code, 0);
  assert.match(install.stderr, /^code cache not written: [^\n]+\n$/);
  assert.equal(existsSync(path.join(dir, 'code-cache')), false);
  const build = await runStatus([script]);
  assert.equal(build.code, 1);
  assert.match(build.stderr, /^code cache not written: /);
});
