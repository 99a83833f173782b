// ESM entry point: the same functions as the CommonJS one. It loads index.js with require() rather than
// `import`: importing a CommonJS file from ESM runs Node's export lexer over it (and, on first use, starts
// that lexer), ~3 ms of a child's start-up that this spares.
import {createRequire} from 'node:module';

const nativeIpc = createRequire(import.meta.url)('./index.js');

export const {fork, spawn, sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel} = nativeIpc;
export default nativeIpc;
