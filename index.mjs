// ESM entry point: the same functions as the CommonJS one.
import nativeIpc from './index.js';

export const {fork, spawn, sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel} = nativeIpc;
export default nativeIpc;
