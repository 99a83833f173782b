// Loads native-ipc (the package at the repository root) from ESM, whether
// index.js exposes named exports to ESM or only a CommonJS default.
const mod = await import(new URL('../../index.js', import.meta.url).href);
const api = typeof mod.fork === 'function' || typeof mod.sendMessage === 'function' ? mod : mod.default;
export const {fork, sendMessage, getOneMessage, getEachMessage} = api;
