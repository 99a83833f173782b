#!/usr/bin/env node
'use strict';

// Writes V8's code cache for native-ipc's modules (see lib/load.js), for the Node that runs this script:
// code-cache/node-<Node version>-v8-<V8 version>-<arch>.bin (see cacheFile in lib/load.js). `npm run build` runs
// it after building the addon.
//
//   node scripts/code-cache.js [directory]    (default: ./code-cache)
//   node scripts/code-cache.js --install      (npm's postinstall of the package)
//
// The cache is made where it is used: the package's postinstall writes it for the Node that installs it and
// for the directory it lands in (Node 20's V8 serves cached code only there, see cachedCodeKeepsItsFileName).
// That step never fails an install: without the addon (a source checkout before `npm run build`, which then
// writes the cache itself) it does nothing, and if the exchange fails it says so in one line and leaves no
// cache; children then compile native-ipc's modules as they start.
// The code is what a real exchange compiled: this script forks scripts/code-cache-child.mjs over native-ipc,
// which sends a first message and echoes the messages of the usual kinds it gets. V8 caches the bytecode of
// every function that ran, not only the top level, so the first messages of a child that starts from the cache
// compile nothing either. The child's code is taken early, after its first few messages (CACHED_AFTER), and
// serves every module the child loaded, the parent's only the others (fork()'s side). Code taken after a longer
// exchange holds functions that V8 had compiled with its baseline compiler (Sparkplug) by then, and a process
// that starts from it spends more on their first calls than the cache saves: a child's first sendMessage() took
// ~300 us with the cache taken after the whole exchange, ~150-190 with it taken early (Node's first
// process.send() ~150). With Sparkplug off in both processes, the late cache cost nothing more. Both processes
// here compile native-ipc's modules from source (NATIVE_IPC_NO_CODE_CACHE), so that nothing of an older cache
// is carried over. A failure leaves no cache and fails the build: the exchange it runs is the most basic use of
// the channel.

const fs = require('node:fs');
const path = require('node:path');

const INSTALL = process.argv[2] === '--install';
// The exchange takes well under a second; a build must never wait forever on it, an install even less.
const TIME_LIMIT_MS = INSTALL ? 20_000 : 60_000;

/** The cached code of every module this process loaded: name → Buffer. */
const cachedCode = () => {
  const {scripts} = require('../lib/load.js');
  return Object.fromEntries([...scripts].map(([name, script]) => [name, script.createCachedData()]));
};

// The usual kind of message first: the child's code is taken after CACHED_AFTER of them. (Taken after the
// third, an array, the child's first sendMessage() took ~210 us instead of ~150; the more messages before it,
// the more of the encoder's and decoder's functions V8 has compiled with Sparkplug.)
const CACHED_AFTER = 2;
const samples = () => [
  {type: 'job', id: 1, name: 'first'},
  {type: 'job', id: 2, name: 'second'},
  [1, 'two', {three: 3}],
  'a string',
  'é'.repeat(100),
  12345,
  Buffer.from('bytes'),
  'x'.repeat(100_000),
  -1.5,
  10n,
  true,
  null,
  {nested: {list: [1, {deep: [null, false]}], date: new Date(0)}},
  Buffer.alloc(200_000, 7),
  new Uint32Array([1, 2, 3]),
  new Map([['key', 1]]),
  new Set([1, 2]),
  /pattern/g,
  new Error('an error'),
];

/**
 * Whether this Node's V8 runs code from a cache under the file name it was compiled with rather than the one it
 * is loaded with (V8 11, Node 20; V8 13 takes the new name). Stack traces of a package moved after its cache was
 * written would then name files of the directory it was built in, so such a cache is kept for this directory
 * only: its modules are stored under their absolute paths, which lib/load.js asks for too. Probed with two
 * sources of the same length (V8 accepts code for any such source) under two file names.
 */
const cachedCodeKeepsItsFileName = () => {
  const vm = require('node:vm');
  const probe = (letter, filename, cachedData) => new vm.Script(`new Error('${letter}').stack`, {filename, cachedData});
  const first = probe('a', '/native-ipc-probe/first.js');
  first.runInThisContext();
  const second = probe('b', '/native-ipc-probe/second.js', first.createCachedData());
  return !second.cachedDataRejected && second.runInThisContext().includes('first.js');
};

const parent = async (directory) => {
  // The sources are read before anything is compiled: a file edited while this runs then differs from the
  // source stored with its code, and is compiled at load rather than served stale code.
  const libDir = path.join(__dirname, '..', 'lib');
  const sources = new Map(
    fs
      .readdirSync(libDir)
      .filter((name) => name.endsWith('.js'))
      .map((name) => [name, fs.readFileSync(path.join(libDir, name))]),
  );
  for (const [name, source] of INSTALL ? [] : sources) {
    const at = source.findIndex((byte) => byte > 0x7f);
    if (at !== -1) {
      const line = source.subarray(0, at).toString('latin1').split('\n').length;
      console.warn(
        `code cache: lib/${name} is not ASCII (line ${line}). Every start then decodes it from UTF-8 into a two-byte string, ` +
          'which for codec.js cost 1.3M instructions; write such characters as \\u escapes.',
      );
    }
  }
  process.env.NATIVE_IPC_NO_CODE_CACHE = '1';
  const {binding, cacheFile} = require('../lib/load.js');
  if (INSTALL) {
    try {
      binding();
    } catch {
      return;
    }
  }
  const {fork} = require('../index.js');
  const subprocess = fork(path.join(__dirname, 'code-cache-child.mjs'), [String(CACHED_AFTER)], {
    buffer: false,
    timeout: TIME_LIMIT_MS,
  });
  await subprocess.getOneMessage();
  for (const message of samples()) {
    await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage(message)]);
  }
  // The child answers 'done' with its cached code and exits, which ends this loop.
  let childCode = {};
  const done = subprocess.sendMessage({k: 'done'});
  for await (const message of subprocess.getEachMessage()) {
    childCode = message;
  }
  await done;
  await subprocess;
  // lib/native.js finds the addon where lib/load.js does not (another platform package, a path in the
  // environment); neither side loaded it here, so it is loaded to be cached too.
  require('../lib/load.js').load('native.js');
  const parentCode = cachedCode();
  const files = [];
  const keepsFileName = cachedCodeKeepsItsFileName();
  for (const name of new Set([...Object.keys(parentCode), ...Object.keys(childCode)])) {
    const a = parentCode[name];
    const b = childCode[name];
    const data = b ?? a;
    if (sources.has(name)) {
      const key = keepsFileName ? path.join(libDir, name) : name;
      files.push({name: key, source: sources.get(name), code: Buffer.from(data)});
    }
  }
  files.sort((x, y) => (x.name < y.name ? -1 : 1));
  fs.mkdirSync(directory, {recursive: true});
  const file = cacheFile(directory);
  binding().writeCodeCache(file, files);
  if (binding().readCodeCache(file)?.length !== files.length) {
    throw new Error(`${file} does not read back`);
  }
  const bytes = files.reduce((sum, {code}) => sum + code.length, 0);
  const scope = keepsFileName ? ` (for ${libDir} only: this V8 keeps a cached file name)` : '';
  console.log(
    `code cache: ${files.length} modules, ${Math.round(bytes / 1024)} KiB of V8 code → ${path.relative(process.cwd(), file)}${scope}`,
  );
};

// A build fails without its cache; an install goes on without it (see the top of this file).
const failure = INSTALL ? 0 : 1;
const limit = setTimeout(() => {
  console.error(`code cache not written: the exchange did not end within ${TIME_LIMIT_MS / 1000} s`);
  process.exit(failure);
}, TIME_LIMIT_MS + 5_000);
limit.unref();
const directory = INSTALL ? undefined : process.argv[2];
parent(path.resolve(directory ?? path.join(__dirname, '..', 'code-cache'))).catch((error) => {
  console.error(`code cache not written: ${INSTALL ? error.message : error.stack}`);
  process.exitCode = failure;
});
