// The preload of a child whose entry is an ES module (lib/parent.js picks it, with `--import`, on a Node that
// has process.getBuiltinModule). It runs lib/load.js exactly as `--require` would run it, and registers it in
// require.cache, so that a later require() of native-ipc in the child gets this very instance.
//
// Why not `--require` for every child: that option makes Node compile the part of its CommonJS loader that
// resolves, reads and wraps a file (39 functions; 1.6 ms of a child's CPU here), which a child whose entry is an
// ES module would never run otherwise. `--import` runs in the ES module loader that such a child starts
// anyway; this file then only reads and compiles load.js.
const Module = process.getBuiltinModule('node:module');
const {readFileSync} = process.getBuiltinModule('node:fs');
const {Script} = process.getBuiltinModule('node:vm');

const dirname = import.meta.dirname;
const filename = `${dirname}/load.js`;

if (Module._cache[filename] === undefined) {
  const module = new Module(filename);
  module.filename = filename;
  Module._cache[filename] = module;
  // load.js asks its require() for Node's built-in modules, and for a file only where the addon is not next to
  // the package (lib/native.js then finds it); Node's own require() is made for that case alone.
  let fileRequire;
  const require = (id) => process.getBuiltinModule(id) ?? (fileRequire ??= Module.createRequire(filename))(id);
  require.cache = Module._cache;
  // Node's CommonJS wrapper, on the first line so that line numbers in stack traces stay right.
  const wrapped = `(function (exports, require, module, __filename, __dirname) { ${readFileSync(filename, 'utf8')}\n});`;
  try {
    new Script(wrapped, {filename}).runInThisContext().call(module.exports, module.exports, require, module, filename, dirname);
  } catch (error) {
    delete Module._cache[filename];
    throw error;
  }
  module.loaded = true;
}
