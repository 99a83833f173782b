// Type tests from a CommonJS module: `require('native-ipc')` resolves through the `require` condition of the
// exports map to the same types.
import nativeIpc = require('native-ipc');
import {fork, type Subprocess, type Result} from 'native-ipc';

// helpers.mts is an ES module, which a CommonJS file cannot import on every TypeScript version: same helpers.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T,>(value: T): T => value;

const subprocess = nativeIpc.fork('child.js', {serialization: 'json'});
expectType<Subprocess<'json'>>(subprocess);
expectType<typeof fork>(nativeIpc.fork);
expectType<Subprocess>(fork('child.js'));
expectType<Equal<Awaited<typeof subprocess>, Result<'json'>>>(true);
void nativeIpc.sendMessage({ready: true});
// @ts-expect-error: the CommonJS module has no `default` property
void nativeIpc.default;
// @ts-expect-error: the channel is not Node's
nativeIpc.spawn('node', {stdio: 'ipc'});

export {};
