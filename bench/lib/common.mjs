// Shared helpers for the benchmark drivers (run under Node and under Bun).
import {readFileSync} from 'node:fs';
import {createInterface} from 'node:readline';

export const MiB = 1024 * 1024;

// The scenarios, in the order they are run and reported.
// `better` tells how a ratio reads: 'higher' (throughput) or 'lower' (time, memory).
export const SCENARIOS = [
	{id: 'p2c', n: '1', title: 'parent→child', unit: 'msgs/s', better: 'higher'},
	{id: 'c2p', n: '2', title: 'child→parent', unit: 'msgs/s', better: 'higher'},
	// 1 and 2 again, on one child that already took a full untimed round: the steady state of a long-lived worker.
	{id: 'p2cWarm', n: '1w', title: 'parent→child, warm child', unit: 'msgs/s', better: 'higher'},
	{id: 'c2pWarm', n: '2w', title: 'child→parent, warm child', unit: 'msgs/s', better: 'higher'},
	{id: 'pingpong', n: '3', title: 'ping-pong', unit: 'µs/round trip', better: 'lower'},
	{id: 'echoString', n: '4a', title: '16 MiB string echo', unit: 'MiB/s', better: 'higher'},
	{id: 'echoBuffer', n: '4b', title: '16 MiB Buffer echo', unit: 'MiB/s', better: 'higher'},
	{id: 'forkFirst', n: '5', title: 'fork → first message', unit: 'ms', better: 'lower'},
	{id: 'peakRss', n: '6', title: 'peak RSS, 256 MiB Buffer echo', unit: '× payload', better: 'lower'},
];

export const DEFAULTS = {
	messages: 200_000, // scenarios 1 and 2 (per round in 1w and 2w)
	roundTrips: 20_000, // scenario 3
	echoBytes: 16 * MiB, // scenarios 4a and 4b
	rssBytes: 256 * MiB, // scenario 6
	forkWarmup: 1, // untimed forks before scenario 5 is measured
};

export const now = () => process.hrtime.bigint();
export const seconds = (t0, t1) => Number(t1 - t0) / 1e9;

export const small = i => ({k: 't', i, payload: 'hello world'});

/** An ASCII string of `bytes` characters (one UTF-8 byte each). */
export function makeString(bytes) {
	const unit = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_';
	let s = unit;
	while (s.length * 2 <= bytes) s += s;
	return s + s.slice(0, bytes - s.length);
}

/** A Buffer of `bytes` bytes with a fixed, non-zero pattern (every page touched). */
export function makeBuffer(bytes) {
	const buf = Buffer.allocUnsafe(bytes);
	const block = Buffer.alloc(4096);
	for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 0xff;
	for (let off = 0; off < bytes; off += block.length) block.copy(buf, off, 0, Math.min(block.length, bytes - off));
	return buf;
}

/** Size of an echoed payload as it came back, whatever shape the channel gave it. */
export function echoedSize(value) {
	if (typeof value === 'string') return value.length;
	if (value instanceof ArrayBuffer) return value.byteLength;
	if (ArrayBuffer.isView(value)) return value.byteLength;
	// JSON serialization turns a Buffer into {type: 'Buffer', data: [...]}
	if (value && value.type === 'Buffer' && Array.isArray(value.data)) return value.data.length;
	return -1;
}

/**
 * Whether an echo came back equal to what was sent: '' when it did, else what came back. It reads every byte, so
 * a receiver that maps what it received lazily (native-ipc's shared memory) pays for reading it here, as one
 * that copied it paid before.
 */
export function echoMismatch(value, payload) {
	if (typeof payload === 'string') {
		return value === payload ? '' : `${typeof value} of ${echoedSize(value)} characters, not the string sent`;
	}
	let bytes;
	if (ArrayBuffer.isView(value)) bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
	else if (value && value.type === 'Buffer' && Array.isArray(value.data)) bytes = Buffer.from(value.data);
	else return `${echoedSize(value)} bytes`;
	return bytes.equals(payload) ? '' : `${bytes.length} bytes, not the ones sent`;
}

/** VmHWM (peak resident set size) of a process, in bytes. */
export function peakRss(pid = 'self') {
	const status = readFileSync(`/proc/${pid}/status`, 'utf8');
	const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
	if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
	return Number(m[1]) * 1024;
}

export function median(values) {
	const v = values.filter(x => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
	if (v.length === 0) return null;
	const mid = v.length >> 1;
	return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function assert(condition, message) {
	if (!condition) throw new Error(`benchmark check failed: ${message}`);
}

/** Marker line a driver prints so run.mjs can find its result among other output. */
export const RESULT_MARK = '@@bench-result ';

export function emitResult(result) {
	process.stdout.write(RESULT_MARK + JSON.stringify(result) + '\n');
}

/** Marker line a stepped driver prints as soon as it took a sample (see runJob). */
export const SAMPLE_MARK = '@@bench-sample';
/** Marker line a stepped driver prints once it has loaded, before its first sample (see runJob). */
export const READY_MARK = '@@bench-ready';

/** The lines run.mjs writes to a stepped driver's stdin, one per sample. */
function stdinSteps() {
	const rl = createInterface({input: process.stdin});
	const lines = rl[Symbol.asyncIterator]();
	return {
		async next() {
			const {done} = await lines.next();
			if (done) throw new Error('run.mjs closed the driver\'s stdin before the last sample');
		},
		/** Resolves once run.mjs closed stdin: every implementation has taken its last sample. */
		async end() {
			while (!(await lines.next()).done);
		},
		close() {
			rl.close();
			process.stdin.destroy();
		},
	};
}

/** Drivers receive their job as one JSON argument. */
export function readJob() {
	const raw = process.argv[2];
	if (!raw) throw new Error('usage: <driver> \'{"scenario":"p2c","serialization":"json","reps":3,...}\'');
	return {...DEFAULTS, reps: 3, ...JSON.parse(raw)};
}

/**
 * Runs `once()` job.reps times (plus warm-ups for scenario 5) and emits the samples.
 * `once()` returns a number, or an object {value, ...details} for scenario 6.
 */
export async function runJob(job, once) {
	const samples = [];
	const details = [];
	// A stepped job (job.stepped) takes each sample when run.mjs asks for it, a line on stdin, and says when it
	// is done: run.mjs takes one sample of every implementation in turn, so that the load of this shared
	// machine, which changes from minute to minute, weighs on all of them alike. The first step includes the
	// warm-ups, and the process (a warm parent) serves every sample, as in a plain job. Nor does a driver's own
	// start or end overlap another's sample: it says when it has loaded (run.mjs waits for every driver before
	// the first sample), and winds down (its warm child's exit, its own) only once run.mjs closes its stdin after
	// the last sample of all. Before, a scenario's first sample ran while the other drivers were starting, and the
	// last round's later samples while the drivers already done were exiting.
	const steps = job.stepped ? stdinSteps() : undefined;
	if (steps) process.stdout.write(READY_MARK + '\n');
	try {
		await steps?.next();
		if (job.scenario === 'forkFirst') {
			for (let i = 0; i < job.forkWarmup; i++) await once();
		}
		await once.warmUp?.();
		for (let r = 0; r < job.reps; r++) {
			if (r > 0) await steps?.next();
			const out = await once();
			if (typeof out === 'number') samples.push(out);
			else {
				samples.push(out.value);
				details.push(out);
			}
			if (steps) process.stdout.write(SAMPLE_MARK + '\n');
		}
		await steps?.end();
		await once.close?.();
		emitResult({samples, details});
	} catch (error) {
		emitResult({samples, details, error: String(error?.stack ?? error).split('\n')[0]});
	} finally {
		steps?.close();
	}
}

// Scenarios 1, 2, 1w and 2w: the child's mode, and whether one warmed child serves every sample.
const ROUNDS = {p2c: ['sink', false], c2p: ['source', false], p2cWarm: ['sink', true], c2pWarm: ['source', true]};

/**
 * The body runJob times for scenarios 1, 2, 1w and 2w (undefined for the others). `start(mode)` makes a child
 * ready to go, `rounds[mode](child, k)` times the k-th round on that child, and `child.finish()` ends it. 1 and
 * 2 take a fresh child per sample, after one untimed round on a child of its own, so that every sample has the
 * same warm parent: before, the first sample alone had a parent that had not run the scenario yet, and it was
 * the slowest of the five for native-ipc in both modes and both directions and for Node json parent→child; 1w
 * and 2w one child, warmed by an untimed round first.
 */
export function roundsBody(scenario, start, rounds) {
	const entry = ROUNDS[scenario];
	if (entry === undefined) return undefined;
	const [mode, warm] = entry;
	const round = rounds[mode];
	if (!warm) {
		const fresh = async () => {
			const child = await start(mode);
			const value = await round(child, 1);
			await child.finish();
			return value;
		};
		fresh.warmUp = fresh;
		return fresh;
	}
	let child;
	let k = 0;
	const once = () => round(child, ++k);
	once.warmUp = async () => {
		child = await start(mode);
		await round(child, ++k);
	};
	once.close = () => child.finish();
	return once;
}
