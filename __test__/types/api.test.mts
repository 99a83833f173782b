// Type tests of the public API, from an ES module. Compiled by `npm run test:types` (tsc --noEmit), never run.
// Right calls must compile; each wrong call carries `// @ts-expect-error`, which fails if it ever compiles.
import type {ChildProcess} from 'node:child_process';
import net from 'node:net';

import nativeIpc, {
  fork,
  spawn,
  sendMessage,
  getOneMessage,
  getEachMessage,
  getCancelSignal,
  channel,
  type AdvancedMessage,
  type JsonMessage,
  type Message,
  type Result,
  type Subprocess,
  type SubprocessError,
  type ForkOptions,
  type SpawnOptions,
  type SendHandle,
} from 'native-ipc';

import {expectType, type Equal} from './helpers.mjs';

// ---- imports: the default export is the same module object as the named exports ----
expectType<typeof fork>(nativeIpc.fork);
expectType<typeof getEachMessage>(nativeIpc.getEachMessage);
// @ts-expect-error: only the package's entry point is exported
await import('native-ipc/lib/parent.js');

// ---- Message differs by serialization ----
expectType<Equal<Message, AdvancedMessage>>(true);
expectType<Equal<Message<'advanced'>, AdvancedMessage>>(true);
expectType<Equal<Message<'json'>, JsonMessage>>(true);
const jsonValue: JsonMessage = {a: [1, 'two', null, {b: true}]};
const advancedValue: AdvancedMessage = new Map<AdvancedMessage, AdvancedMessage>([[1n, new Set([new Date()])]]);
// @ts-expect-error: a Map is not JSON
const notJson: JsonMessage = new Map();
// @ts-expect-error: undefined is not JSON
const notJson2: JsonMessage = undefined;
// @ts-expect-error: bigint is not JSON
const notJson3: JsonMessage = 1n;

// ---- fork() and spawn() call forms ----
const subprocess = fork('child.js');
fork(new URL('file:///child.js'));
fork('child.js', ['--flag']);
fork('child.js', {cwd: '/tmp'});
fork('child.js', ['--flag'], {env: {A: '1'}, execArgv: ['--no-warnings'], execPath: process.execPath});
spawn('node', ['child.js'], {ipc: true});
spawn('ls');
spawn('ls', ['-l'], {stdio: 'inherit'});
// @ts-expect-error: args are strings
fork('child.js', [1]);
// @ts-expect-error: the script is a path or a URL
fork(42);

// ---- Subprocess: a ChildProcess, the IPC methods, a promise of the result ----
expectType<Equal<typeof subprocess, Subprocess<'advanced'>>>(true);
const childProcess: ChildProcess = subprocess;
expectType<number | undefined>(subprocess.pid);
subprocess.kill('SIGTERM');
subprocess.on('exit', (code, signal) => {
  expectType<number | null>(code);
  expectType<NodeJS.Signals | null>(signal);
});
subprocess.stdout?.pipe(process.stdout);
subprocess.disconnect();
expectType<boolean>(subprocess.connected);

const result = await subprocess;
expectType<Equal<typeof result, Result<'advanced'>>>(true);
expectType<false>(result.failed);
expectType<number | undefined>(result.exitCode);
expectType<NodeJS.Signals | undefined>(result.signal);
expectType<AdvancedMessage[]>(result.ipcOutput);
expectType<boolean>(result.isMaxBuffer);
expectType<boolean>(result.isCanceled);
expectType<boolean>(result.isGracefullyCanceled);
expectType<string>(result.command);
// @ts-expect-error: the result has no stdout (messages only)
result.stdout;

await subprocess.catch((error) => {
  expectType<Equal<typeof error, SubprocessError<'advanced'>>>(true);
  expectType<true>(error.failed);
  expectType<string>(error.shortMessage);
  expectType<string>(error.message);
  expectType<AdvancedMessage[]>(error.ipcOutput);
  expectType<unknown>(error.cause);
});
const both = await subprocess.then(
  (value) => value.exitCode,
  (error: SubprocessError) => error.shortMessage,
);
expectType<Equal<typeof both, number | string | undefined>>(true);
expectType<Promise<Result>>(subprocess.finally(() => {}));
const [settled] = await Promise.all([subprocess]);
expectType<Equal<typeof settled, Result>>(true);

// ---- serialization: 'json' flows into the subprocess, its methods and its result ----
const jsonSubprocess = fork('child.js', {serialization: 'json'});
expectType<Equal<typeof jsonSubprocess, Subprocess<'json'>>>(true);
expectType<JsonMessage[]>((await jsonSubprocess).ipcOutput);
expectType<Promise<JsonMessage>>(jsonSubprocess.getOneMessage());
expectType<Subprocess<'json'>>(spawn('node', ['child.js'], {ipc: true, serialization: 'json'}));

// ---- sendMessage: generic in the message type, checked against the serialization ----
interface Job {
  readonly id: number;
  readonly payload: Buffer;
  readonly tags?: readonly string[];
}
type Point = {x: number; y: number};
const job: Job = {id: 1, payload: Buffer.from('x')};

await subprocess.sendMessage('text');
await subprocess.sendMessage({nested: {list: [1, 2n, undefined, null, new Date(), /re/g]}});
await subprocess.sendMessage(new Map([['key', new Set([new Uint8Array(4)])]]));
await subprocess.sendMessage(new Error('boom'));
await subprocess.sendMessage(new ArrayBuffer(8));
await subprocess.sendMessage(job);
await subprocess.sendMessage<Job>({id: 2, payload: Buffer.alloc(0)});
await subprocess.sendMessage(await subprocess.getOneMessage());
await subprocess.sendMessage({strict: true}, {strict: true});
await subprocess.sendMessage(1, {});
// @ts-expect-error: wrong shape for the declared message type
await subprocess.sendMessage<Job>({id: 'two', payload: Buffer.alloc(0)});
// @ts-expect-error: functions cannot be sent
await subprocess.sendMessage(() => {});
// @ts-expect-error: symbols cannot be sent
await subprocess.sendMessage(Symbol('s'));
// @ts-expect-error: a function inside an object cannot be sent either
await subprocess.sendMessage({run: () => {}});
// @ts-expect-error: promises cannot be sent
await subprocess.sendMessage(Promise.resolve(1));
// @ts-expect-error: a WeakMap cannot be sent
await subprocess.sendMessage(new WeakMap());
// @ts-expect-error: a class instance with methods would lose them
await subprocess.sendMessage(new URL('file:///x'));
// @ts-expect-error: `strict` is a boolean
await subprocess.sendMessage(1, {strict: 'yes'});
// @ts-expect-error: unknown option
await subprocess.sendMessage(1, {strcit: true});

await jsonSubprocess.sendMessage({a: [1, 'b', null, true]});
await jsonSubprocess.sendMessage<Point>({x: 1, y: 2});
await jsonSubprocess.sendMessage({id: 1, optional: undefined as number | undefined} satisfies {id: number; optional?: number});
await jsonSubprocess.sendMessage(await jsonSubprocess.getOneMessage());
// @ts-expect-error: a Map would arrive as {} in JSON mode
await jsonSubprocess.sendMessage(new Map());
// @ts-expect-error: a Date would arrive as a string in JSON mode
await jsonSubprocess.sendMessage({when: new Date()});
// @ts-expect-error: bigint is not JSON
await jsonSubprocess.sendMessage(1n);
// @ts-expect-error: undefined is not JSON
await jsonSubprocess.sendMessage(undefined);
// @ts-expect-error: a Buffer is not JSON
await jsonSubprocess.sendMessage(job);

// ---- getOneMessage: generic, with a type-guard filter narrowing the result ----
const any = await subprocess.getOneMessage();
expectType<Equal<typeof any, AdvancedMessage>>(true);
const expected = await subprocess.getOneMessage<Job>();
expectType<Equal<typeof expected, Job>>(true);

const isPoint = (message: AdvancedMessage): message is Point =>
  typeof message === 'object' && message !== null && 'x' in message;
const point = await subprocess.getOneMessage({filter: isPoint});
expectType<Equal<typeof point, Point>>(true);

type Reply = {type: 'done'; value: number} | {type: 'progress'; percent: number};
const isDone = (message: Reply): message is Extract<Reply, {type: 'done'}> => message.type === 'done';
const done = await subprocess.getOneMessage({filter: isDone});
expectType<Equal<typeof done, {type: 'done'; value: number}>>(true);

// An inline guard (or an inferred one, since TypeScript 5.5) narrows as well.
const text = await subprocess.getOneMessage({filter: (message): message is string => typeof message === 'string'});
expectType<Equal<typeof text, string>>(true);
// A plain predicate filters without narrowing.
const unfiltered = await subprocess.getOneMessage({filter: (message) => message !== null, reference: false});
expectType<AdvancedMessage>(unfiltered);
const jsonText = await jsonSubprocess.getOneMessage({filter: (message): message is string => typeof message === 'string'});
expectType<Equal<typeof jsonText, string>>(true);
// @ts-expect-error: the filter is a function
await subprocess.getOneMessage({filter: 'done'});
// @ts-expect-error: `reference` is a boolean
await subprocess.getOneMessage({reference: 'no'});
// @ts-expect-error: unknown option
await subprocess.getOneMessage({timeout: 10});
// @ts-expect-error: the guard must take the message type
await subprocess.getOneMessage<Job>({filter: (message: string): message is 'a' => message === 'a'});

// ---- getEachMessage: generic async iterator ----
for await (const message of subprocess.getEachMessage()) {
  expectType<Equal<typeof message, AdvancedMessage>>(true);
}
for await (const message of subprocess.getEachMessage<Reply>({reference: false})) {
  if (message.type === 'done') {
    expectType<number>(message.value);
  }
}
for await (const message of jsonSubprocess.getEachMessage()) {
  expectType<Equal<typeof message, JsonMessage>>(true);
}
// @ts-expect-error: getEachMessage() has no filter
subprocess.getEachMessage({filter: () => true});

// ---- options: unknown keys and wrong literals are refused ----
fork('child.js', {serialization: 'advanced', buffer: false, maxBuffer: 10, verbose: 'full', maxMessageSize: 1024});
fork('child.js', {stdio: ['pipe', 'inherit', 'ignore', 'pipe'], detached: true, timeout: 1000, killSignal: 'SIGINT'});
fork('child.js', {ipcInput: {start: new Date()}, ipc: true});
fork('child.js', {ipc: false});
fork('child.js', {
  ipc(message, child) {
    expectType<AdvancedMessage>(message);
    expectType<Subprocess>(child);
  },
});
fork('child.js', {
  serialization: 'json',
  ipc(message) {
    expectType<JsonMessage>(message);
  },
});
const controller = new AbortController();
fork('child.js', {cancelSignal: controller.signal});
fork('child.js', {cancelSignal: controller.signal, gracefulCancel: true, forceKillAfterDelay: 1000});
fork('child.js', {cancelSignal: controller.signal, gracefulCancel: false, forceKillAfterDelay: false});
spawn('node', {ipc: true, ipcInput: 'go', cancelSignal: controller.signal, gracefulCancel: true});
spawn('node', {signal: controller.signal, shell: false});
const forkOptions: ForkOptions<'json'> = {serialization: 'json', ipcInput: {a: 1}};
const spawnOptions: SpawnOptions = {ipc: true};
fork('child.js', forkOptions);
spawn('node', spawnOptions);

// @ts-expect-error: unknown option (a typo)
fork('child.js', {serializaton: 'json'});
// @ts-expect-error: unknown serialization
fork('child.js', {serialization: 'yaml'});
// @ts-expect-error: unknown verbose level
fork('child.js', {verbose: 'loud'});
// @ts-expect-error: maxBuffer is a number of messages
fork('child.js', {maxBuffer: '10'});
// @ts-expect-error: the channel is not Node's
fork('child.js', {stdio: 'ipc'});
// @ts-expect-error: the channel is not Node's, in the array form either
fork('child.js', {stdio: ['pipe', 'pipe', 'pipe', 'ipc']});
// @ts-expect-error: child_process.fork's `silent` is not supported
fork('child.js', {silent: true});
// @ts-expect-error: spawn() runs any file, so it has no execPath
spawn('node', {execPath: '/usr/bin/node'});
// @ts-expect-error: ipcInput needs the channel
fork('child.js', {ipc: false, ipcInput: 'hello'});
// @ts-expect-error: spawn() opens the channel only with `ipc: true`
spawn('node', {ipcInput: 'hello'});
// @ts-expect-error: the ipc option is a boolean or a callback
fork('child.js', {ipc: 'yes'});
// @ts-expect-error: ipcInput must be serializable in the chosen mode
fork('child.js', {serialization: 'json', ipcInput: new Map()});
// @ts-expect-error: gracefulCancel needs cancelSignal
fork('child.js', {gracefulCancel: true});
// @ts-expect-error: gracefulCancel needs the advanced serialization
fork('child.js', {cancelSignal: controller.signal, gracefulCancel: true, serialization: 'json'});
// @ts-expect-error: gracefulCancel needs the channel
spawn('node', {cancelSignal: controller.signal, gracefulCancel: true});
// @ts-expect-error: cancelSignal is an AbortSignal
fork('child.js', {cancelSignal: controller});

// ---- child side ----
await sendMessage({ready: true});
await sendMessage<Job>(job);
await sendMessage('done', {strict: true});
// @ts-expect-error: functions cannot be sent
await sendMessage(() => {});
// @ts-expect-error: unknown option
await sendMessage('x', {timeout: 1});
const first = await getOneMessage();
expectType<Equal<typeof first, AdvancedMessage>>(true);
expectType<Equal<Awaited<ReturnType<typeof getOneMessage<Job>>>, Job>>(true);
const firstPoint = await getOneMessage({filter: isPoint});
expectType<Equal<typeof firstPoint, Point>>(true);
for await (const message of getEachMessage<Reply>()) {
  expectType<Reply>(message);
}
// @ts-expect-error: getEachMessage() has no filter
getEachMessage({filter: isPoint});
const cancelSignal = await getCancelSignal();
expectType<AbortSignal>(cancelSignal);

export {childProcess, jsonValue, advancedValue, notJson, notJson2, notJson3};

// ---- child side, Node-style channel ----
expectType<boolean>(channel.connected);
expectType<boolean>(channel.send({hello: 'parent'}));
channel.send('x', (error) => {
  expectType<Error | null>(error);
});
channel.send('server', net.createServer(), {keepOpen: true}, () => {});
channel.send('socket', new net.Socket(), () => {});
channel.on('message', (message, handle) => {
  expectType<AdvancedMessage>(message);
  expectType<SendHandle | undefined>(handle);
});
channel.once('disconnect', () => {});
channel.ref();
channel.unref();
channel.disconnect();
// @ts-expect-error: functions cannot be sent
channel.send(() => {});
// @ts-expect-error: only a net.Server or net.Socket travels as a handle
channel.send('handle', {fd: 3});
// @ts-expect-error: unknown send option
channel.send('x', undefined, {keepOpne: true});
