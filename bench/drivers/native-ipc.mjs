// Driver: native-ipc's fork(). Run by run.mjs as
//   node bench/drivers/native-ipc.mjs '<job json>'
// The parent reads everything through one getEachMessage() iterator per child
// (created right after fork, so nothing is missed); sends are fired without
// awaiting each one, and only the last is awaited (order is guaranteed).
import {fileURLToPath} from 'node:url';
import {MiB, now, seconds, small, makeString, makeBuffer, echoMismatch, peakRss, assert, readJob, runJob, roundsBody} from '../lib/common.mjs';
import {fork} from '../../index.mjs';

const childPath = fileURLToPath(new URL('../children/native-ipc-child.mjs', import.meta.url));
const job = readJob();

function open(mode, n, extra = {}) {
	const sub = fork(childPath, [mode, String(n)], {serialization: job.serialization, buffer: false, ...extra});
	const messages = sub.getEachMessage()[Symbol.asyncIterator]();
	const next = async () => {
		const {value, done} = await messages.next();
		if (done) throw new Error('the child ended before the scenario finished');
		return value;
	};
	const expect = async kind => {
		const m = await next();
		assert(m && m.k === kind, `expected {k: '${kind}'} from the child, got ${JSON.stringify(m)?.slice(0, 80)}`);
		return m;
	};
	const finish = async () => {
		await sub.sendMessage({k: 'exit'});
		await sub;
	};
	return {sub, messages, next, expect, finish};
}

function body() {
	const {scenario} = job;

	const n = job.messages;
	const started = async mode => {
		const c = open(mode, n);
		await c.expect('ready');
		return c;
	};
	const sinkRound = async (c, k) => {
		const t0 = now();
		let last;
		for (let i = 0; i < n; i++) last = c.sub.sendMessage(small(i));
		await last;
		// The child replies with its running count after every n-th message.
		const reply = await c.expect('count');
		const t1 = now();
		assert(reply.n === k * n, `child counted ${reply.n} of ${k * n}`);
		return n / seconds(t0, t1);
	};
	const sourceRound = async c => {
		const t0 = now();
		c.sub.sendMessage({k: 'go'});
		let count = 0;
		while (count < n) {
			const {value, done} = await c.messages.next();
			if (done) throw new Error(`the child ended after ${count} of ${n} messages`);
			if (value.k === 't') count++;
		}
		const t1 = now();
		return n / seconds(t0, t1);
	};
	const rounds = roundsBody(scenario, started, {sink: sinkRound, source: sourceRound});
	if (rounds !== undefined) return rounds;

	if (scenario === 'pingpong') {
		const n = job.roundTrips;
		return async () => {
			const c = open('echo', 0);
			await c.expect('ready');
			const t0 = now();
			for (let i = 0; i < n; i++) {
				c.sub.sendMessage(small(i));
				const {value, done} = await c.messages.next();
				if (done || value.i !== i) throw new Error(`round trip ${i} came back as ${JSON.stringify(value)}`);
			}
			const t1 = now();
			await c.finish();
			return (seconds(t0, t1) * 1e6) / n;
		};
	}

	if (scenario === 'echoString' || scenario === 'echoBuffer') {
		const bytes = job.echoBytes;
		const payload = scenario === 'echoString' ? makeString(bytes) : makeBuffer(bytes);
		return async () => {
			const c = open('echo', 0);
			await c.expect('ready');
			const t0 = now();
			c.sub.sendMessage(payload);
			const back = await c.next();
			// Inside the timed window: the echo counts once it has been read in full.
			const mismatch = echoMismatch(back, payload);
			const t1 = now();
			assert(mismatch === '', `the echo came back as ${mismatch}`);
			await c.finish();
			return (2 * bytes) / MiB / seconds(t0, t1);
		};
	}

	if (scenario === 'forkFirst') {
		return async () => {
			const t0 = now();
			const c = open('echo', 0);
			await c.expect('ready');
			const t1 = now();
			await c.finish();
			return seconds(t0, t1) * 1e3;
		};
	}

	if (scenario === 'peakRss') {
		const bytes = job.rssBytes;
		return async () => {
			// room for the payload plus its encoding overhead, whatever the default limit is
			const c = open('echo', 0, {maxMessageSize: 2 * bytes});
			await c.expect('ready');
			let payload = makeBuffer(bytes);
			const t0 = now();
			c.sub.sendMessage(payload);
			const back = await c.next();
			const t1 = now();
			// Read in full before the peaks are taken: a value mapped lazily counts once it is read.
			const mismatch = echoMismatch(back, payload);
			assert(mismatch === '', `the echo came back as ${mismatch}`);
			const parent = peakRss();
			const child = peakRss(c.sub.pid);
			payload = null;
			await c.finish();
			return {value: (parent + child) / bytes, parent: parent / bytes, child: child / bytes, seconds: seconds(t0, t1)};
		};
	}

	throw new Error(`unknown scenario ${scenario}`);
}

await runJob(job, body());
