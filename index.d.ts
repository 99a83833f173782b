// Public types of native-ipc. The native binding's own typings (binding.d.ts) are internal.
import type {ChildProcess, SpawnOptions as NodeSpawnOptions} from 'node:child_process';

/** A value that `serialization: 'json'` carries: what `JSON.parse` can return. */
export type JsonMessage =
  | string
  | number
  | boolean
  | null
  | readonly JsonMessage[]
  | {readonly [key: string]: JsonMessage};

type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** A value that `serialization: 'advanced'` (the default) carries: the structured-clone set. */
export type AdvancedMessage =
  | string
  | number
  | boolean
  | null
  | undefined
  | bigint
  | Date
  | RegExp
  | Error
  | ArrayBuffer
  | DataView
  | TypedArray
  | Buffer
  | ReadonlyMap<AdvancedMessage, AdvancedMessage>
  | ReadonlySet<AdvancedMessage>
  | readonly AdvancedMessage[]
  | {readonly [key: string]: AdvancedMessage};

/** The messages a channel carries in the given serialization mode. */
export type Message<Serialization extends 'advanced' | 'json' = 'advanced'> = Serialization extends 'json'
  ? JsonMessage
  : AdvancedMessage;

export interface SendMessageOptions {
  /** Resolve only once the other process received the message while listening; reject otherwise. */
  readonly strict?: boolean;
}

export interface GetOneMessageOptions<M> {
  /** Skip messages for which this returns a falsy value (for this call only). */
  readonly filter?: (message: M) => unknown;
  /** Keep the process alive while waiting. Default: true. */
  readonly reference?: boolean;
}

export interface GetEachMessageOptions {
  /** Keep the process alive until the loop ends. Default: true. */
  readonly reference?: boolean;
}

export interface IpcMethods<M> {
  /** Sends a message; resolves once it was handed to the kernel (or, with `strict`, once received). */
  sendMessage(message: M, options?: SendMessageOptions): Promise<void>;
  /** Resolves with the next message that passes the type guard `filter`. */
  getOneMessage<F extends M>(options: GetOneMessageOptions<M> & {readonly filter: (message: M) => message is F}): Promise<F>;
  /** Resolves with the next message (that passes `filter`). */
  getOneMessage(options?: GetOneMessageOptions<M>): Promise<M>;
  /** Iterates over every message until the other process disconnects. */
  getEachMessage(options?: GetEachMessageOptions): AsyncIterableIterator<M>;
}

type OwnOptions<Serialization extends 'advanced' | 'json'> = {
  /** `'advanced'` (structured-clone types, default) or `'json'` (JSON semantics). */
  readonly serialization?: Serialization;
  /** A first message, sent before `fork()` returns. */
  readonly ipcInput?: Message<Serialization>;
  /** Collect every message from the child into `result.ipcOutput`. Default: true. */
  readonly buffer?: boolean;
  /** Most messages kept in `ipcOutput`; past it the result fails with `isMaxBuffer`. Default: 100_000_000. */
  readonly maxBuffer?: number;
  /** `'full'` prints each message received from the child on stderr. Default: `'none'`. */
  readonly verbose?: 'none' | 'short' | 'full';
  /** Largest encoded message in bytes, checked on both sides. Default: 512 MiB. */
  readonly maxMessageSize?: number;
  /** Not Node's channel: `'ipc'` is refused in every form. */
  readonly stdio?: Exclude<NodeSpawnOptions['stdio'], 'ipc'>;
};

export type ForkOptions<Serialization extends 'advanced' | 'json' = 'advanced'> = Omit<
  NodeSpawnOptions,
  'stdio' | 'serialization'
> &
  OwnOptions<Serialization> & {
    /** Open the channel. Default: true for fork; or a function called with each message from the child. */
    readonly ipc?: boolean | ((message: Message<Serialization>, subprocess: Subprocess<Serialization>) => void);
    /** The Node.js binary. Default: `process.execPath`. */
    readonly execPath?: string;
    /** Node.js flags for the child. Default: `process.execArgv`. */
    readonly execArgv?: readonly string[];
  };

export type SpawnOptions<Serialization extends 'advanced' | 'json' = 'advanced'> = Omit<
  NodeSpawnOptions,
  'stdio' | 'serialization'
> &
  OwnOptions<Serialization> & {
    /** Open the channel. Default: false for spawn. */
    readonly ipc?: boolean | ((message: Message<Serialization>, subprocess: Subprocess<Serialization>) => void);
  };

export interface Result<Serialization extends 'advanced' | 'json' = 'advanced'> {
  readonly command: string;
  readonly pid: number | undefined;
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  /** Every message received from the child, in order (empty with `buffer: false`). */
  readonly ipcOutput: Array<Message<Serialization>>;
  readonly failed: boolean;
  readonly isMaxBuffer: boolean;
  readonly isCanceled: boolean;
  readonly isGracefullyCanceled: boolean;
}

export interface SubprocessError<Serialization extends 'advanced' | 'json' = 'advanced'>
  extends Error,
    Result<Serialization> {
  readonly shortMessage: string;
}

export type Subprocess<Serialization extends 'advanced' | 'json' = 'advanced'> = ChildProcess &
  IpcMethods<Message<Serialization>> &
  PromiseLike<Result<Serialization>> & {
    catch<T = never>(onRejected?: (error: SubprocessError<Serialization>) => T | PromiseLike<T>): Promise<Result<Serialization> | T>;
    finally(onFinally?: () => void): Promise<Result<Serialization>>;
  };

/** Runs a Node.js file with the channel open. */
export function fork<Serialization extends 'advanced' | 'json' = 'advanced'>(
  scriptPath: string | URL,
  args?: readonly string[],
  options?: ForkOptions<Serialization>,
): Subprocess<Serialization>;
export function fork<Serialization extends 'advanced' | 'json' = 'advanced'>(
  scriptPath: string | URL,
  options?: ForkOptions<Serialization>,
): Subprocess<Serialization>;

/** Runs any executable; the channel is opened with `ipc: true`. */
export function spawn<Serialization extends 'advanced' | 'json' = 'advanced'>(
  file: string | URL,
  args?: readonly string[],
  options?: SpawnOptions<Serialization>,
): Subprocess<Serialization>;
export function spawn<Serialization extends 'advanced' | 'json' = 'advanced'>(
  file: string | URL,
  options?: SpawnOptions<Serialization>,
): Subprocess<Serialization>;

/** In a child: sends a message to the parent. */
export function sendMessage(message: AdvancedMessage, options?: SendMessageOptions): Promise<void>;
/** In a child: resolves with the next message from the parent that passes the type guard `filter`. */
export function getOneMessage<F extends AdvancedMessage>(
  options: GetOneMessageOptions<AdvancedMessage> & {readonly filter: (message: AdvancedMessage) => message is F},
): Promise<F>;
/** In a child: resolves with the next message from the parent. */
export function getOneMessage(options?: GetOneMessageOptions<AdvancedMessage>): Promise<AdvancedMessage>;
/** In a child: iterates over the parent's messages until it disconnects. */
export function getEachMessage(options?: GetEachMessageOptions): AsyncIterableIterator<AdvancedMessage>;
