// ESM entry point: the same object as the CommonJS one (lib/api.js).
//
// In a child that native-ipc's fork() started, the preload (lib/load.js) has loaded it already and left it
// under a registered symbol, keyed by the path of this very file: taking it from there needs neither
// node:module nor Node's CommonJS loader, ~1M instructions of the child's start-up. Anywhere else (or on a
// Node 20 older than 20.11, without import.meta.filename), index.js is loaded with require(), not `import`:
// importing a CommonJS file from ESM runs Node's export lexer over it (and, on first use, starts that lexer),
// ~3 ms of a start-up.
const nativeIpc =
  globalThis[Symbol.for('native-ipc.preloaded')]?.get(import.meta.filename) ??
  (await import('node:module')).createRequire(import.meta.url)('./index.js');

export const {fork, spawn, sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel} = nativeIpc;
export default nativeIpc;
