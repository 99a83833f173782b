// Scenario bodies for channels that deliver messages through a callback:
// Node's child_process.fork ('message' event) and Bun.spawn ({ipc}).
// A transport supplies `spawn(mode, n)` returning a Channel (see below).
import {MiB, now, seconds, small, makeString, makeBuffer, echoMismatch, peakRss, assert, roundsBody} from './common.mjs';

/**
 * Wraps a child so messages can be awaited one at a time (control traffic) or
 * handed to a hot callback (measured traffic), without losing any in between.
 * The transport calls `deliver(message)` from its own message callback and
 * `closed(reason)` when the child is gone.
 */
export class Channel {
	constructor() {
		this.hot = null;
		this.queue = [];
		this.waiters = [];
		this.gone = null;
	}

	deliver(message) {
		if (this.hot !== null) this.hot(message);
		else if (this.waiters.length > 0) this.waiters.shift().resolve(message);
		else this.queue.push(message);
	}

	closed(reason) {
		this.gone = new Error(`child ended before the scenario finished (${reason})`);
		for (const w of this.waiters.splice(0)) w.reject(this.gone);
		if (this.onGone) this.onGone(this.gone);
	}

	next() {
		if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
		if (this.gone) return Promise.reject(this.gone);
		return new Promise((resolve, reject) => this.waiters.push({resolve, reject}));
	}

	/** Routes every message to `handler(message, done, fail)` until it calls done(). */
	stream(handler) {
		return new Promise((resolve, reject) => {
			const finish = error => {
				this.hot = null;
				this.onGone = null;
				if (error) reject(error);
				else resolve();
			};
			this.onGone = finish;
			if (this.gone) return finish(this.gone);
			this.hot = message => handler(message, () => finish(), finish);
			for (const m of this.queue.splice(0)) this.hot?.(m);
		});
	}

	async expect(kind) {
		const m = await this.next();
		assert(m && m.k === kind, `expected {k: '${kind}'} from the child, got ${JSON.stringify(m)?.slice(0, 80)}`);
		return m;
	}

	/** Asks the child to exit and waits until it has. */
	async finish() {
		this.send({k: 'exit'});
		await this.exited;
	}
}

export function scenarioBody(job, transport) {
	const {scenario} = job;

	const n = job.messages;
	const started = async mode => {
		const ch = transport.spawn(mode, n);
		await ch.expect('ready');
		return ch;
	};
	const sinkRound = async (ch, k) => {
		const t0 = now();
		for (let i = 0; i < n; i++) ch.send(small(i));
		// The child replies with its running count after every n-th message.
		const reply = await ch.expect('count');
		const t1 = now();
		assert(reply.n === k * n, `child counted ${reply.n} of ${k * n}`);
		return n / seconds(t0, t1);
	};
	const sourceRound = async ch => {
		let count = 0;
		const t0 = now();
		const done = ch.stream((m, finish) => {
			if (m.k === 't' && ++count === n) finish();
		});
		ch.send({k: 'go'});
		await done;
		const t1 = now();
		return n / seconds(t0, t1);
	};
	const rounds = roundsBody(scenario, started, {sink: sinkRound, source: sourceRound});
	if (rounds !== undefined) return rounds;

	if (scenario === 'pingpong') {
		const n = job.roundTrips;
		return async () => {
			const ch = transport.spawn('echo', 0);
			await ch.expect('ready');
			let i = 0;
			const t0 = now();
			const done = ch.stream((m, finish, fail) => {
				if (m.i !== i) return fail(new Error(`round trip ${i} came back as ${m.i}`));
				if (++i === n) finish();
				else ch.send(small(i));
			});
			ch.send(small(0));
			await done;
			const t1 = now();
			await ch.finish();
			return (seconds(t0, t1) * 1e6) / n;
		};
	}

	if (scenario === 'echoString' || scenario === 'echoBuffer') {
		const bytes = job.echoBytes;
		const payload = scenario === 'echoString' ? makeString(bytes) : makeBuffer(bytes);
		return async () => {
			const ch = transport.spawn('echo', 0);
			await ch.expect('ready');
			const t0 = now();
			ch.send(payload);
			const back = await ch.next();
			// Inside the timed window: the echo counts once it has been read in full.
			const mismatch = echoMismatch(back, payload);
			const t1 = now();
			assert(mismatch === '', `the echo came back as ${mismatch}`);
			await ch.finish();
			return (2 * bytes) / MiB / seconds(t0, t1);
		};
	}

	if (scenario === 'forkFirst') {
		return async () => {
			const t0 = now();
			const ch = transport.spawn('echo', 0);
			await ch.expect('ready');
			const t1 = now();
			await ch.finish();
			return seconds(t0, t1) * 1e3;
		};
	}

	if (scenario === 'peakRss') {
		const bytes = job.rssBytes;
		return async () => {
			const ch = transport.spawn('echo', 0);
			await ch.expect('ready');
			let payload = makeBuffer(bytes);
			const t0 = now();
			try {
				ch.send(payload);
			} catch (error) {
				ch.kill();
				throw error;
			}
			const back = await ch.next();
			const t1 = now();
			// Read in full before the peaks are taken: a value mapped lazily counts once it is read.
			const mismatch = echoMismatch(back, payload);
			assert(mismatch === '', `the echo came back as ${mismatch}`);
			const parent = peakRss();
			const child = peakRss(ch.pid);
			payload = null;
			await ch.finish();
			return {value: (parent + child) / bytes, parent: parent / bytes, child: child / bytes, seconds: seconds(t0, t1)};
		};
	}

	throw new Error(`unknown scenario ${scenario}`);
}
