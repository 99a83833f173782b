// fork() loads native-ipc into the child before its script: with `--import` of its index.mjs when the script is an
// ES module (.mjs, or .js under "type": "module") and the child runs this Node, with `--require lib/load.js`
// otherwise. Real children in a temporary directory answer over the channel; the flags they were started with
// are the subprocess's spawnargs (the preload takes them out of the child's process.execArgv).
import {test, after} from 'node:test';
import assert from 'node:assert/strict';
import {cpSync, mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {execFile} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import {fork} from './helpers.mjs';

const INDEX_MJS = new URL('../index.mjs', import.meta.url).href;
const INDEX_JS = fileURLToPath(new URL('../index.js', import.meta.url));
const LOAD_JS = fileURLToPath(new URL('../lib/load.js', import.meta.url));
const IMPORT = ['--import', new URL('../index.mjs', import.meta.url).href];
const REQUIRE = ['--require', LOAD_JS];

const work = mkdtempSync(path.join(tmpdir(), 'native-ipc-preload-'));
after(() => rmSync(work, {recursive: true, force: true}));

// An ES module child: answers the first message with its flags, the message, and whether require() of
// native-ipc gives the very object that `import` gave, with the preload registered in require.cache as
// `--require` registers it (one instance of native-ipc, whichever loaded it first).
const ESM_CHILD = `import {createRequire} from 'node:module';
import nativeIpc, {getOneMessage, sendMessage} from ${JSON.stringify(INDEX_MJS)};
const message = await getOneMessage();
const require = createRequire(import.meta.url);
const sameInstance = require(${JSON.stringify(INDEX_JS)}) === nativeIpc && require.cache[${JSON.stringify(LOAD_JS)}]?.loaded === true;
await sendMessage({execArgv: process.execArgv, message, sameInstance});
`;
const CJS_CHILD = `const {getOneMessage, sendMessage} = require(${JSON.stringify(INDEX_JS)});
(async () => {
  const message = await getOneMessage();
  await sendMessage({execArgv: process.execArgv, message, sameInstance: true});
})();
`;

const write = (relative, text) => {
  const file = path.join(work, relative);
  mkdirSync(path.dirname(file), {recursive: true});
  writeFileSync(file, text);
  return file;
};
const files = {
  mjs: write('child.mjs', ESM_CHILD),
  cjs: write('child.cjs', CJS_CHILD),
  typedJs: write(path.join('typed', 'nested', 'child.js'), ESM_CHILD),
  plainJs: write(path.join('plain', 'child.js'), CJS_CHILD),
  // Node looks for a package scope no further up than a node_modules directory.
  vendoredJs: write(path.join('typed', 'node_modules', 'child.js'), CJS_CHILD),
};
write(path.join('typed', 'package.json'), JSON.stringify({type: 'module'}));
write(path.join('plain', 'package.json'), JSON.stringify({name: 'plain'}));
// Not read by Node: a package.json right in a node_modules directory is nobody's scope.
write(path.join('typed', 'node_modules', 'package.json'), JSON.stringify({type: 'module'}));

/**
 * Forks `file` (without this process's Node flags), sends it one message, and returns its answer once it exited,
 * with the flags it was started with.
 */
const exchange = async (file, options) => {
  const subprocess = fork(file, {execArgv: [], ...options});
  const [answer] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage({hello: path.basename(file)})]);
  await subprocess;
  return {...answer, started: subprocess.spawnargs.slice(1, -1)};
};

test('an ES module script (.mjs, or .js under "type": "module") is preloaded with --import, a CommonJS one with --require, and each talks over the channel', async () => {
  for (const [name, expected] of [
    ['mjs', IMPORT],
    ['typedJs', IMPORT],
    ['cjs', REQUIRE],
    ['plainJs', REQUIRE],
    ['vendoredJs', REQUIRE],
  ]) {
    const answer = await exchange(files[name]);
    assert.deepEqual(answer.started, expected, name);
    assert.deepEqual(answer.execArgv, [], name);
    assert.deepEqual(answer.message, {hello: path.basename(files[name])}, name);
    assert.equal(answer.sameInstance, true, name);
  }
});

test('a relative script path is looked up from the cwd option, as the child will', async () => {
  const answer = await exchange(path.join('nested', 'child.js'), {cwd: path.join(work, 'typed')});
  assert.deepEqual(answer.started, IMPORT);
  assert.deepEqual(answer.message, {hello: 'child.js'});
});

test('a child run by another Node binary (the execPath option) is preloaded with --require, even for an ES module', async () => {
  const otherNode = path.join(work, 'other-node');
  symlinkSync(process.execPath, otherNode);
  const answer = await exchange(files.mjs, {execPath: otherNode});
  assert.deepEqual(answer.started, REQUIRE);
  assert.deepEqual(answer.execArgv, []);
  assert.equal(answer.sameInstance, true);
});

test("a Worker in an ES module child runs the preload too, finds no channel there, and leaves the child's alone", async () => {
  const worker = write(
    'worker.mjs',
    `import {parentPort} from 'node:worker_threads';
const {sendMessage} = await import(${JSON.stringify(INDEX_MJS)});
let code = 'sent';
try {
  await sendMessage('from the worker');
} catch (error) {
  code = error.code;
}
parentPort.postMessage(code);
`,
  );
  const child = write(
    'with-worker.mjs',
    `import {Worker} from 'node:worker_threads';
import {getOneMessage, sendMessage} from ${JSON.stringify(INDEX_MJS)};
const worker = new Worker(${JSON.stringify(worker)});
const workerSays = await new Promise((resolve, reject) => {
  worker.once('message', resolve);
  worker.once('error', reject);
});
await sendMessage({workerSays, message: await getOneMessage()});
`,
  );
  const answer = await exchange(child);
  assert.deepEqual(answer.started, IMPORT);
  assert.deepEqual(answer.workerSays, 'ERR_IPC_NOT_ENABLED');
  assert.deepEqual(answer.message, {hello: 'with-worker.mjs'});
});

test('a package in a directory whose name a URL encodes (space, %, #, non-ASCII): its ES module child takes the preload flags out of process.execArgv', async () => {
  // The child finds its own --import flag by decoding the URL fork() gave it (lib/load.js, isOwnPreload).
  const root = fileURLToPath(new URL('..', import.meta.url));
  const dir = path.join(work, 'a dir %25 #\u00e9', 'native-ipc');
  for (const file of ['index.js', 'index.mjs', 'package.json', 'lib']) {
    cpSync(path.join(root, file), path.join(dir, file), {recursive: true});
  }
  symlinkSync(path.join(root, 'native-ipc.linux-x64-gnu.node'), path.join(dir, 'native-ipc.linux-x64-gnu.node'));
  writeFileSync(
    path.join(dir, 'child.mjs'),
    `import {sendMessage} from './index.mjs';\nawait sendMessage({execArgv: process.execArgv, preloaded: Object.getOwnPropertySymbols(globalThis).some((key) => key.description === 'native-ipc.preloaded')});\n`,
  );
  writeFileSync(
    path.join(dir, 'parent.mjs'),
    `import {fork} from './index.mjs';\nconst subprocess = fork(new URL('child.mjs', import.meta.url), {execArgv: []});\nconst answer = await subprocess.getOneMessage();\nawait subprocess;\nconsole.log(JSON.stringify({answer, started: subprocess.spawnargs.slice(1, -1)}));\n`,
  );
  const stdout = await new Promise((resolve, reject) => {
    execFile(process.execPath, [path.join(dir, 'parent.mjs')], {encoding: 'utf8', timeout: 30_000}, (error, out, err) =>
      error === null ? resolve(out) : reject(new Error(`${error.message}\n${err}`)),
    );
  });
  const {answer, started} = JSON.parse(stdout);
  assert.equal(started[0], '--import');
  assert.match(started[1], /%2525%20%23%C3%A9/);
  assert.deepEqual(answer, {execArgv: [], preloaded: true});
});

test("a child's start loads none of Node's modules it does not need: the parent side (child_process, net), perf_hooks and the process module come only when used", async () => {
  // What this package adds at start is every child's cost (scenario 5 of the bench). Compared with a script
  // that loads nothing, for either preload.
  const probe = (kind) =>
    kind === 'mjs'
      ? `import {sendMessage} from ${JSON.stringify(INDEX_MJS)};\nawait sendMessage(process.moduleLoadList);\n`
      : `require(${JSON.stringify(INDEX_JS)}).sendMessage(process.moduleLoadList);\n`;
  for (const kind of ['mjs', 'cjs']) {
    const file = write(`load-list.${kind}`, probe(kind));
    const subprocess = fork(file, {execArgv: []});
    const loaded = await subprocess.getOneMessage();
    await subprocess;
    for (const module of ['child_process', 'net', 'perf_hooks', 'internal/perf/performance', 'process']) {
      assert.ok(!loaded.includes(`NativeModule ${module}`), `${kind}: ${module} was loaded at start`);
    }
  }
});
