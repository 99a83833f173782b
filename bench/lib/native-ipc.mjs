// Loads native-ipc (the package at the repository root) from ESM, through its ESM entry point, as
// `import ... from 'native-ipc'` does.
export {fork, sendMessage, getOneMessage, getEachMessage} from '../../index.mjs';
