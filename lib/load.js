'use strict';

// Loads native-ipc's own modules (lib/*.js) with V8's code cache, so that a child does not compile ~135 KB of
// JS every time it starts: that compiling was ~5 ms of a fork -> first message here, and Node 20 has no compile
// cache for a package's modules (module.enableCompileCache() came in Node 22.1, and it is process-wide).
//
// `npm run build` writes the cache (scripts/code-cache.js) for the Node it runs on: one file per V8 version and
// architecture in code-cache/, holding each module's source and the code V8 produced for it in a real parent
// and child. A module is served from the cache only when its source is byte for byte the cached one (V8
// itself would accept code cached for any source of the same length) and V8 accepts the code (same version,
// same flags); otherwise it is compiled as Node would. On a V8 that keeps the file name code was cached under
// (Node 20), the cache serves only the directory it was written in: a moved package compiles, so that its stack
// traces name its own files. A cache file that is missing, cut short or unreadable is ignored. Every module is
// registered in require.cache, so a plain require() of one gets this instance.
// (Scripts compiled here have no dynamic import(); a module that needs one must be loaded by require().)
//
// The addon reads the files (src/code_cache.rs): Node's fs would run JavaScript that Node compiles on first
// use, in every child. So the addon is loaded first, straight from its file when it lies next to the package
// (as lib/native.js tries first), otherwise through lib/native.js.

const path = require('node:path');
const vm = require('node:vm');
// Node's Module class. Taken from this module's own object when Node's loader made it: require('node:module')
// would also load Node's source-map support, a third of a millisecond of every child's start.
const Module = typeof module.constructor?.createRequire === 'function' ? module.constructor : require('node:module');

const CACHE_DIR = path.join(__dirname, '..', 'code-cache');
/**
 * The cache file for this Node release, V8 and architecture. The release is part of the name because V8's
 * own check is not enough: Node 20.20.2 accepts code cached by 20.20.1 (same version tag and flags) although
 * its security fix changed how that code is laid out, and running it crashes (nodejs/node#62781).
 */
const cacheFile = (dir = CACHE_DIR) =>
  path.join(dir, `node-${process.version}-v8-${process.versions.v8}-${process.arch}.bin`);

// What a module of this directory names its siblings with.
const SIBLING = /^\.\/[\w-]+\.js$/;

/**
 * Whether this module runs in Node's main context. A test runner such as Jest loads modules into a vm context
 * of its own; there, runInThisContext would run native-ipc in the main context instead, so that the objects,
 * errors and promises it creates would come from another realm than the caller's. native-ipc's modules are
 * then left to that runner's require(). The test: the require() this module was given is a function of the
 * loader's own realm, which is this module's only in the main context (a runner makes it in its own realm,
 * as it does what it hands out for Node's built-in modules, mocked or not).
 */
const mainContext = Object.getPrototypeOf(require) === Function.prototype;
/**
 * name -> how the module was compiled: 'cached', 'rejected' (V8 refused the cached code), 'compiled', or
 * 'required' (by Node's require(): outside the main context, and lib/native.js when the addon is not next to
 * the package).
 */
const outcomes = {};
/** name -> vm.Script, for the cache writer. */
const scripts = new Map();

/** cacheFile() for this package, or '' (none) under NATIVE_IPC_NO_CODE_CACHE. */
var ownCacheFile;
/** undefined: not tried yet; null: not there. */
var direct;
/**
 * The module of the addon file `filename`: the one in require.cache (index.mjs loads the addon, where
 * directAddon() finds it, before it runs this file), or one loaded as require() would load it (not registered),
 * or undefined.
 */
const dlopen = (filename) => {
  const registered = require.cache[filename];
  if (registered !== undefined) {
    return registered;
  }
  const module = new Module(filename);
  module.filename = filename;
  try {
    process.dlopen(module, filename);
  } catch {
    return undefined;
  }
  module.loaded = true;
  return module;
};
/** The `version` of the package.json in `dir`, read with the addon `reader` (undefined if it cannot say). */
const versionIn = (reader, dir) => {
  try {
    return JSON.parse(reader.readTextFile(path.join(dir, 'package.json'))).version;
  } catch {
    return undefined;
  }
};
/**
 * The addon, loaded as require() would but without resolving a path, from where it lies in the common cases:
 * next to the package (a source checkout, or a copy put there), or in the glibc platform package installed
 * beside native-ipc (npm's node_modules, pnpm's store), where only the package of this very version counts, as
 * for lib/native.js. Resolving that package through Node's require() instead (lib/native.js) made an installed
 * child's first message come 6-8% later (two alternating runs of 101 forks). Undefined elsewhere, and for a
 * platform package of another version; lib/native.js and napi-rs's loader then decide. index.mjs applies this
 * same rule, with its own copy of dlopen(), before this file exists (it then loads this file from the code cache
 * through the addon); a change to the rule goes into both, and the package test covers both layouts.
 */
const directAddon = () => {
  if (direct === undefined) {
    direct = null;
    if (mainContext && process.platform === 'linux' && !process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
      const platform = `linux-${process.arch}-gnu`;
      const file = `native-ipc.${platform}.node`;
      const packageDir = path.join(__dirname, '..');
      let module = dlopen(path.join(packageDir, file));
      if (module === undefined) {
        const platformDir = path.join(packageDir, '..', `native-ipc-${platform}`);
        module = dlopen(path.join(platformDir, file));
        if (module !== undefined) {
          const version = versionIn(module.exports, platformDir);
          if (version === undefined || version !== versionIn(module.exports, packageDir)) {
            module = undefined;
          }
        }
      }
      if (module !== undefined) {
        require.cache[module.filename] = module;
        direct = module.exports;
      }
    }
  }
  return direct ?? undefined;
};

var addon;
/** The addon, from wherever lib/native.js would find it. */
const binding = () => {
  if (addon === undefined) {
    addon = directAddon();
    if (addon === undefined) {
      outcomes['native.js'] = 'required';
      addon = require('./native.js');
    }
  }
  return addon;
};

/**
 * A module's `require`: its siblings come through `load`, Node's built-in modules from Node, and anything else
 * (the addon, package.json) through a require() for the module's own path, made on first use: most modules
 * never need one, and making one costs more than loading a cached module.
 */
const requireFor = (filename) => {
  let nodeRequire;
  const fileRequire = () => (nodeRequire ??= Module.createRequire(filename));
  const localRequire = (id) => {
    if (typeof id === 'string') {
      if (SIBLING.test(id)) {
        return load(id.slice(2));
      }
      if (Module.isBuiltin(id)) {
        return require(id);
      }
    }
    return fileRequire()(id);
  };
  localRequire.resolve = (request, options) => fileRequire().resolve(request, options);
  localRequire.cache = require.cache;
  return localRequire;
};

/** Loads lib/<name> (once, like require) and returns its exports. */
const load = (name) => {
  if (!mainContext) {
    outcomes[name] ??= 'required';
    return require(`./${name}`);
  }
  // Plain concatenation: `name` is a file name of this directory, and every path function a child calls at
  // start-up is one more for V8 to compile.
  const filename = __dirname + path.sep + name;
  const loaded = require.cache[filename];
  if (loaded !== undefined) {
    return loaded.exports;
  }
  // The source comes inside Node's CommonJS wrapper (src/code_cache.rs).
  // NATIVE_IPC_NO_CODE_CACHE: every module compiled from source (scripts/code-cache.js, which writes the cache).
  ownCacheFile ??= process.env.NATIVE_IPC_NO_CODE_CACHE === undefined ? cacheFile() : '';
  const {source, code} = binding().loadModuleCode(ownCacheFile, filename, name);
  const script = new vm.Script(source, {filename, cachedData: code});
  outcomes[name] = code === undefined ? 'compiled' : script.cachedDataRejected ? 'rejected' : 'cached';
  scripts.set(name, script);
  const module = new Module(filename);
  module.filename = filename;
  require.cache[filename] = module;
  try {
    script.runInThisContext().call(module.exports, module.exports, requireFor(filename), module, filename, __dirname);
  } catch (error) {
    delete require.cache[filename];
    throw error;
  }
  module.loaded = true;
  return module.exports;
};

/** The package's index.mjs, the preload of an ES module child. */
const INDEX_MJS = path.join(__dirname, '..', 'index.mjs');
/** INDEX_MJS as a file URL, once asked for. */
var preloadUrl;
/**
 * The flags with which fork() (lib/parent.js) has a child run this file before its script: `--require` it, or
 * `--import` the package's index.mjs, which runs it (for an ES module script, which then imports that module
 * already loaded).
 */
const preloadFlags = (esm) => {
  if (!esm) {
    return ['--require', __filename];
  }
  preloadUrl ??= require('node:url').pathToFileURL(INDEX_MJS).href;
  return ['--import', preloadUrl];
};
/**
 * Whether `flag value`, two entries of a process.execArgv, are one of those preloads. The URL is read back
 * without Node's URL class, whose first use cost a child ~0.1 ms of its start (it runs this at start): a file
 * URL that pathToFileURL() made has an empty host and every '%' of its path encoded, so decoding what follows
 * `file://` gives the path back.
 */
const isOwnPreload = (flag, value) => {
  if (flag === '--require') {
    return value === __filename;
  }
  if (flag !== '--import' || typeof value !== 'string' || !value.startsWith('file:///')) {
    return false;
  }
  try {
    return decodeURIComponent(value.slice(7)) === INDEX_MJS;
  } catch {
    // Not percent-encoded as a URL is.
    return false;
  }
};

module.exports = {load, binding, directAddon, outcomes, scripts, cacheFile, preloadFlags, isOwnPreload};

// This file is also the preload of every child that native-ipc's fork() starts (`--require`, or through
// index.mjs with `--import`, before the user's script): the channel end is adopted at once, so the descriptor
// and the environment variable never leak into a grandchild, even when the script spawns one before it first
// uses the channel. (A separate CommonJS preload file was one more module for Node to resolve, read and
// compile in every child.) A process that has the variable without the preload (spawn() of a Node script)
// adopts when it first loads native-ipc.
if (mainContext && process.env.NATIVE_IPC_CHANNEL !== undefined) {
  load('child.js').adopt();
  // The flags that loaded this preload are fork()'s own: without them in process.execArgv, a process this child
  // starts with Node's fork() (which passes process.execArgv on) does not load it again. (A Worker inherits
  // Node's parsed options, not this array, and runs the preload, which finds no channel there and stops.)
  const argv = process.execArgv;
  for (let i = argv.length - 2; i >= 0; i--) {
    if (isOwnPreload(argv[i], argv[i + 1])) {
      argv.splice(i, 2);
    }
  }
  // The public API, for index.mjs where Node has no process.getBuiltinModule (see there): keyed by that file's
  // path, so that another copy of native-ipc in this process loads its own. Not enumerable; it holds only what
  // require('native-ipc') returns anyway.
  const KEY = Symbol.for('native-ipc.preloaded');
  if (!Object.hasOwn(globalThis, KEY)) {
    Object.defineProperty(globalThis, KEY, {value: new Map()});
  }
  globalThis[KEY].set(INDEX_MJS, load('api.js'));
}
