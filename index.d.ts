// Public types of native-ipc, for both `import` and `require` (the ESM entry re-exports the CommonJS one, and
// its default export is that same module object). The native binding's own typings (binding.d.ts) are
// internal. Node's types (`@types/node`) are needed, as for `node:child_process` itself; TypeScript ≥ 5.4.
import type {ChildProcess, SpawnOptions as NodeSpawnOptions} from 'node:child_process';
import type {EventEmitter} from 'node:events';
import type {Server, Socket} from 'node:net';
import type {Stream} from 'node:stream';

/** How messages are encoded: `'advanced'` (the structured-clone set, the default) or `'json'`. */
export type Serialization = 'advanced' | 'json';

/** A value that `serialization: 'json'` delivers: what `JSON.parse` can return. */
export type JsonMessage =
  | string
  | number
  | boolean
  | null
  | readonly JsonMessage[]
  | {readonly [key: string]: JsonMessage};

/** A value that `serialization: 'advanced'` (the default) delivers: the structured-clone set. */
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
  | ArrayBufferView
  | ReadonlyMap<AdvancedMessage, AdvancedMessage>
  | ReadonlySet<AdvancedMessage>
  | readonly AdvancedMessage[]
  | {readonly [key: string]: AdvancedMessage};

/** The messages a channel delivers in the given serialization mode. */
export type Message<S extends Serialization = 'advanced'> = S extends 'json' ? JsonMessage : AdvancedMessage;

// What `serialization: 'advanced'` takes as it is; anything else must be a plain object, array, Map or Set of
// such values. Functions, symbols, promises and objects with methods (class instances, WeakMap, …) are refused.
type AdvancedLeaf =
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
  | ArrayBufferView
  // eslint-disable-next-line @typescript-eslint/no-wrapper-object-types
  | Number
  // eslint-disable-next-line @typescript-eslint/no-wrapper-object-types
  | String
  // eslint-disable-next-line @typescript-eslint/no-wrapper-object-types
  | Boolean;

type Refused = ((...args: never) => unknown) | symbol | PromiseLike<unknown>;

type AdvancedValue<T> = T extends AdvancedLeaf
  ? T
  : T extends Refused
    ? never
    : T extends ReadonlyMap<infer K, infer V>
      ? ReadonlyMap<AdvancedValue<K>, AdvancedValue<V>>
      : T extends ReadonlySet<infer V>
        ? ReadonlySet<AdvancedValue<V>>
        : T extends object
          ? {[K in keyof T]: K extends symbol ? never : AdvancedValue<T[K]>}
          : never;

// `serialization: 'json'` takes what `JSON.stringify` keeps as it is. Dates, Maps, bigints and the like are
// refused by the types even where JSON.stringify would change them silently (a Date into a string, a Map into
// `{}`), since the other side would not receive what the sender's type says. An object's property may be
// `undefined` (JSON.stringify leaves it out), an array's item may not (it would arrive as null).
type JsonValue<T> = T extends string | number | boolean | null
  ? T
  : T extends Refused | bigint | undefined
    ? never
    : T extends readonly unknown[]
      ? {[K in keyof T]: JsonValue<T[K]>}
      : T extends object
        ? {[K in keyof T]: K extends symbol ? never : JsonProperty<T[K]>}
        : never;

type JsonProperty<T> = T extends undefined ? undefined : JsonValue<T>;

/**
 * `T` itself when every part of it can be sent in the given serialization mode; otherwise a type that `T` is
 * not assignable to (the offending part becomes `never`). Used as the bound of the message type parameters,
 * so that interfaces work as message types as well as type aliases do.
 */
export type Serializable<T, S extends Serialization = 'advanced'> = [T] extends [Message<S>]
  ? T
  : S extends 'json'
    ? JsonValue<T>
    : AdvancedValue<T>;

export interface SendMessageOptions {
  /**
   * Resolve only once the other process received the message while one of its `getOneMessage()` or
   * `getEachMessage()` calls was listening; reject otherwise. Default: false.
   */
  readonly strict?: boolean;
}

export interface GetOneMessageOptions<M = Message> {
  /** Skip messages for which this returns a falsy value (for this call only; they stay for other receivers). */
  readonly filter?: (message: M) => unknown;
  /** Keep the process alive while waiting. Default: true. */
  readonly reference?: boolean;
}

export interface GetEachMessageOptions {
  /** Keep the process alive until the loop ends. Default: true. */
  readonly reference?: boolean;
}

/**
 * The three IPC methods of a subprocess. `M` is the type of a message: for `sendMessage` it is checked against
 * what the serialization mode can carry; for the receiving methods it is what the caller expects the other
 * process to send (unchecked at run time, as with `JSON.parse`), `Message<S>` by default.
 */
export interface IpcMethods<S extends Serialization = 'advanced'> {
  /** Sends a message; resolves once it was handed to the kernel (or, with `strict`, once received). */
  sendMessage<M = Message<S>>(message: M & NoInfer<Serializable<M, S>>, options?: SendMessageOptions): Promise<void>;
  /** Resolves with the next message that passes the type guard `filter`, narrowed to the guarded type. */
  getOneMessage<M = Message<S>, F extends M = M>(
    options: GetOneMessageOptions<M> & {readonly filter: (message: M) => message is F},
  ): Promise<F>;
  /** Resolves with the next message (that passes `filter`). */
  getOneMessage<M = Message<S>>(options?: GetOneMessageOptions<M>): Promise<M>;
  /**
   * Iterates over every message until the other process disconnects. When the loop ends, the parent disconnects
   * and waits for the subprocess, and the loop throws if the subprocess failed.
   */
  getEachMessage<M = Message<S>>(options?: GetEachMessageOptions): AsyncIterableIterator<M>;
}

type StdioItem = 'pipe' | 'overlapped' | 'ignore' | 'inherit' | Stream | number | null | undefined;

/** The options both `fork()` and `spawn()` take besides the channel ones. */
type CommonOptions<S extends Serialization> = Omit<NodeSpawnOptions, 'stdio' | 'serialization'> & {
  /** `'advanced'` (the structured-clone set, the default) or `'json'` (JSON semantics). */
  readonly serialization?: S;
  /** Collect every message from the child into `result.ipcOutput`. Default: true. */
  readonly buffer?: boolean;
  /** Most messages kept in `ipcOutput`; past it the result fails with `isMaxBuffer`. Default: 100_000_000. */
  readonly maxBuffer?: number;
  /** `'full'` prints each message received from the child on stderr. Default: `'none'`. */
  readonly verbose?: 'none' | 'short' | 'full';
  /** Largest encoded message in bytes, checked on both sides. Default: 512 MiB. */
  readonly maxMessageSize?: number;
  /** Like `child_process.spawn`'s, without `'ipc'`: the channel is not Node's (use the `ipc` option). */
  readonly stdio?: 'pipe' | 'overlapped' | 'ignore' | 'inherit' | readonly StdioItem[];
  /**
   * With `gracefulCancel`, how long the subprocess may take to stop after the cancel request before it gets
   * SIGKILL, in milliseconds; `true` for 5000, `false` never to kill it. Default: 5000.
   */
  readonly forceKillAfterDelay?: boolean | number;
};

/** Called with each message from the child, as it arrives. */
export type IpcCallback<S extends Serialization = 'advanced'> = (message: Message<S>, subprocess: Subprocess<S>) => void;

/** `cancelSignal` stops the subprocess; with `gracefulCancel`, by asking it over the channel first. */
type CancelOptions<S extends Serialization> =
  | {
      /** Aborting it kills the subprocess with `killSignal` (or, with `gracefulCancel`, asks it to stop). */
      readonly cancelSignal?: AbortSignal;
      readonly gracefulCancel?: false;
    }
  | {
      readonly cancelSignal: AbortSignal;
      /**
       * Deliver the abort to the child's `getCancelSignal()` instead of killing it. Needs the channel and
       * `serialization: 'advanced'`.
       */
      readonly gracefulCancel: S extends 'json' ? never : true;
    };

/** The channel is open: a first message and graceful cancellation may be used. */
type OpenChannelOptions<S extends Serialization> = CancelOptions<S> & {
  /** A first message, sent before `fork()`/`spawn()` returns. */
  readonly ipcInput?: Message<S>;
};

/** The channel is closed: no `ipcInput`, no `gracefulCancel`. */
type ClosedChannelOptions = {
  readonly cancelSignal?: AbortSignal;
  readonly gracefulCancel?: false;
  readonly ipcInput?: undefined;
};

export type ForkOptions<S extends Serialization = 'advanced'> = CommonOptions<S> & {
  /** The Node.js binary. Default: `process.execPath`. */
  readonly execPath?: string;
  /** Node.js flags for the child. Default: `process.execArgv`, without the code of `node -e`/`-p` and `--input-type`. */
  readonly execArgv?: readonly string[];
} & (
    | (OpenChannelOptions<S> & {
        /** Open the channel (default for `fork()`), optionally with a callback for each message. */
        readonly ipc?: true | IpcCallback<S>;
      })
    | (ClosedChannelOptions & {readonly ipc: false})
  );

export type SpawnOptions<S extends Serialization = 'advanced'> = CommonOptions<S> &
  (
    | (OpenChannelOptions<S> & {
        /** Open the channel (closed by default for `spawn()`), optionally with a callback for each message. */
        readonly ipc: true | IpcCallback<S>;
      })
    | (ClosedChannelOptions & {readonly ipc?: false})
  );

/** What a subprocess's result and failure both tell. */
export interface CommonResult<S extends Serialization = 'advanced'> {
  /** The file and arguments, joined with spaces. */
  readonly command: string;
  readonly pid: number | undefined;
  /** Undefined when the process did not exit by itself (killed by a signal, or never started). */
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  /** Every message received from the child, in order (empty with `buffer: false`). */
  readonly ipcOutput: Array<Message<S>>;
  /** The child sent more than `maxBuffer` messages. */
  readonly isMaxBuffer: boolean;
  /** `cancelSignal` was aborted. */
  readonly isCanceled: boolean;
  /** `cancelSignal` was aborted with `gracefulCancel`. */
  readonly isGracefullyCanceled: boolean;
}

/** What `await subprocess` gives when the child exited with code 0 and the channel closed cleanly. */
export interface Result<S extends Serialization = 'advanced'> extends CommonResult<S> {
  readonly failed: false;
}

/** What `await subprocess` rejects with: non-zero exit, signal, spawn error, cancellation or channel error. */
export interface SubprocessError<S extends Serialization = 'advanced'> extends Error, CommonResult<S> {
  readonly failed: true;
  /** The message without the messages received from the child, which `message` ends with. */
  readonly shortMessage: string;
}

/**
 * A started subprocess: Node's `ChildProcess` (pid, stdio streams, `kill()`, events, `connected`,
 * `disconnect()`), the IPC methods, and a promise of its result.
 */
export type Subprocess<S extends Serialization = 'advanced'> = ChildProcess &
  IpcMethods<S> & {
    then<R1 = Result<S>, R2 = never>(
      onFulfilled?: ((result: Result<S>) => R1 | PromiseLike<R1>) | null,
      onRejected?: ((error: SubprocessError<S>) => R2 | PromiseLike<R2>) | null,
    ): Promise<R1 | R2>;
    catch<R = never>(onRejected?: ((error: SubprocessError<S>) => R | PromiseLike<R>) | null): Promise<Result<S> | R>;
    finally(onFinally?: (() => void) | null): Promise<Result<S>>;
  };

/** Runs a Node.js file with the channel open. */
export function fork<S extends Serialization = 'advanced'>(
  scriptPath: string | URL,
  args?: readonly string[],
  options?: ForkOptions<S>,
): Subprocess<S>;
export function fork<S extends Serialization = 'advanced'>(scriptPath: string | URL, options?: ForkOptions<S>): Subprocess<S>;

/** Runs any executable; the channel is opened with `ipc: true`. */
export function spawn<S extends Serialization = 'advanced'>(
  file: string | URL,
  args?: readonly string[],
  options?: SpawnOptions<S>,
): Subprocess<S>;
export function spawn<S extends Serialization = 'advanced'>(file: string | URL, options?: SpawnOptions<S>): Subprocess<S>;

// Child side. The child cannot know which serialization its parent chose; the types assume the default,
// `'advanced'`.

/** In a child: sends a message to the parent. */
export function sendMessage<M = AdvancedMessage>(message: M & NoInfer<Serializable<M>>, options?: SendMessageOptions): Promise<void>;
/** In a child: resolves with the next message from the parent that passes the type guard `filter`. */
export function getOneMessage<M = AdvancedMessage, F extends M = M>(
  options: GetOneMessageOptions<M> & {readonly filter: (message: M) => message is F},
): Promise<F>;
/** In a child: resolves with the next message from the parent (that passes `filter`). */
export function getOneMessage<M = AdvancedMessage>(options?: GetOneMessageOptions<M>): Promise<M>;
/** In a child: iterates over the parent's messages until it disconnects. */
export function getEachMessage<M = AdvancedMessage>(
  options?: GetEachMessageOptions,
): AsyncIterableIterator<M>;
/**
 * In a child: an `AbortSignal` aborted when the parent's `cancelSignal` is aborted with `gracefulCancel`, or
 * when the parent disconnects. Rejects, the first time, when the process has no channel.
 */
export function getCancelSignal(): Promise<AbortSignal>;

/** A handle that `send()` can pass with a message; it arrives as the same kind of object. */
export type SendHandle = Server | Socket;

/** Node's `send()` options: `keepOpen` keeps a sent socket open in the sending process. */
export interface NodeSendOptions {
  readonly keepOpen?: boolean;
}

/** Called once the message was written, or with the error that prevented it. */
export type SendCallback = (error: Error | null) => void;

/**
 * In a child: Node's process IPC API (`process.send`, `process.on('message')`, …) over the same channel, for
 * code written against `child_process`. 'message' and 'disconnect' listeners keep the process alive until
 * `unref()` is called.
 */
export interface ChildChannel extends EventEmitter {
  /** Whether messages can still be sent. */
  readonly connected: boolean;
  /** Returns false when the messages waiting for the kernel passed the high-water mark (back-pressure). */
  send<M = AdvancedMessage>(message: M & NoInfer<Serializable<M>>, callback?: SendCallback): boolean;
  send<M = AdvancedMessage>(
    message: M & NoInfer<Serializable<M>>,
    sendHandle: SendHandle | undefined,
    callback?: SendCallback,
  ): boolean;
  send<M = AdvancedMessage>(
    message: M & NoInfer<Serializable<M>>,
    sendHandle: SendHandle | undefined,
    options: NodeSendOptions | undefined,
    callback?: SendCallback,
  ): boolean;
  disconnect(): void;
  /** Lets 'message' and 'disconnect' listeners keep the process alive again. */
  ref(): void;
  /** Stops 'message' and 'disconnect' listeners from keeping the process alive. */
  unref(): void;
  on(event: 'message', listener: (message: AdvancedMessage, handle: SendHandle | undefined) => void): this;
  on(event: 'disconnect', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: 'message', listener: (message: AdvancedMessage, handle: SendHandle | undefined) => void): this;
  once(event: 'disconnect', listener: () => void): this;
  once(event: 'error', listener: (error: Error) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** In a child: Node's process IPC API over native-ipc's channel. Throws on use when there is no channel. */
export const channel: ChildChannel;
