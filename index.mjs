// ESM entry point: the same object as the CommonJS one (lib/api.js). It is also the preload of a child whose
// script is an ES module (lib/parent.js passes `--import` of this file, on a Node that has
// process.getBuiltinModule): the script's own `import` of native-ipc then finds this module in the ES module
// loader's map, where a separate preload file made Node resolve, read and compile one module more per child.
//
// lib/load.js is run here exactly as `--require` would run it, and registered in require.cache, so that a later
// require() of native-ipc gets this very instance. Why not Node's require(): the first use of Node's CommonJS
// loader compiles the part of it that resolves, reads and wraps a file (39 functions; 1.6 ms of a child's CPU
// here), which a process whose entry is an ES module would never run otherwise.
const PRELOADED = Symbol.for('native-ipc.preloaded');

/** The module of the addon file `filename`, loaded as require() would load it (not registered), or undefined. */
const dlopen = (Module, filename) => {
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

/**
 * The addon where directAddon() in lib/load.js finds it, by the same rule (the two must stay alike): next to the
 * package, or in the glibc platform package installed beside it when that package is of this very version.
 * Loaded and registered in require.cache as load.js registers it, so that load.js takes it from there.
 * Undefined elsewhere; load.js then looks for it as it always does.
 */
const directAddon = (Module) => {
  if (process.platform !== 'linux' || process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
    return undefined;
  }
  const packageDir = import.meta.dirname;
  const file = `native-ipc.linux-${process.arch}-gnu.node`;
  let module = dlopen(Module, `${packageDir}/${file}`);
  if (module === undefined) {
    const platformDir = `${packageDir.slice(0, packageDir.lastIndexOf('/'))}/native-ipc-linux-${process.arch}-gnu`;
    module = dlopen(Module, `${platformDir}/${file}`);
    if (module === undefined) {
      return undefined;
    }
    const versionIn = (dir) => {
      try {
        return JSON.parse(module.exports.readTextFile(`${dir}/package.json`)).version;
      } catch {
        return undefined;
      }
    };
    const version = versionIn(platformDir);
    if (version === undefined || version !== versionIn(packageDir)) {
      return undefined;
    }
  }
  Module._cache[module.filename] = module;
  return module.exports;
};

/** lib/load.js's exports: the instance in require.cache, or one run now and registered there. */
const loadJs = () => {
  const Module = process.getBuiltinModule('node:module');
  const dirname = `${import.meta.dirname}/lib`;
  const filename = `${dirname}/load.js`;
  const cached = Module._cache[filename];
  if (cached !== undefined) {
    return cached.exports;
  }
  const {Script} = process.getBuiltinModule('node:vm');
  // load.js comes from V8's code cache as the modules it loads do (see there), through the addon: reading it
  // with Node's fs (its first use in a process, ~90 us) and compiling it (~145 us) was most of what this file
  // cost a child. The cache file is named as cacheFile() in load.js names it.
  const addon = directAddon(Module);
  let source;
  let code;
  if (addon === undefined) {
    // Node's CommonJS wrapper, on the first line so that line numbers in stack traces stay right.
    const text = process.getBuiltinModule('node:fs').readFileSync(filename, 'utf8');
    source = `(function (exports, require, module, __filename, __dirname) { ${text}\n});`;
  } else {
    const cacheFile =
      process.env.NATIVE_IPC_NO_CODE_CACHE === undefined
        ? `${import.meta.dirname}/code-cache/node-${process.version}-v8-${process.versions.v8}-${process.arch}.bin`
        : '';
    ({source, code} = addon.loadModuleCode(cacheFile, filename, 'load.js'));
  }
  const module = new Module(filename);
  module.filename = filename;
  Module._cache[filename] = module;
  // load.js asks its require() for Node's built-in modules, and for a file only where directAddon() found no
  // addon (lib/native.js then looks for it); Node's own require() is made for that case alone.
  let fileRequire;
  const require = (id) => process.getBuiltinModule(id) ?? (fileRequire ??= Module.createRequire(filename))(id);
  require.cache = Module._cache;
  const script = new Script(source, {filename, cachedData: code});
  try {
    script.runInThisContext().call(module.exports, module.exports, require, module, filename, dirname);
  } catch (error) {
    delete Module._cache[filename];
    throw error;
  }
  module.loaded = true;
  // For the cache writer (scripts/code-cache.js), and the tests, as load.js records the modules it loads.
  module.exports.scripts.set('load.js', script);
  module.exports.outcomes['load.js'] =
    code === undefined ? 'compiled' : script.cachedDataRejected ? 'rejected' : 'cached';
  return module.exports;
};

// In a child that a `--require lib/load.js` preload started (on a Node without process.getBuiltinModule), the
// preload left the API under a registered symbol, keyed by the path of this very file: taking it from there needs
// neither node:module nor Node's CommonJS loader. On a Node 20 older than 20.11 (without import.meta.filename),
// index.js is loaded with require(), not `import`: importing a CommonJS file from ESM runs Node's export lexer
// over it (and, on first use, starts that lexer), ~3 ms of a start-up.
const nativeIpc =
  globalThis[PRELOADED]?.get(import.meta.filename) ??
  (typeof process.getBuiltinModule === 'function'
    ? loadJs().load('api.js')
    : (await import('node:module')).createRequire(import.meta.url)('./index.js'));

export const {fork, spawn, sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel} = nativeIpc;
export default nativeIpc;
