// Driver: the fastest round trip Node itself can make to a child, the floor for scenario 3 from inside
// Node. The child echoes raw bytes on its stdio pipes (a socketpair, read and written by libuv): no
// serialization, no framing, no IPC layer. Only the ping-pong scenario is measured.
//   node bench/drivers/node-stream.mjs '<job json>'
import {spawn} from 'node:child_process';
import {once} from 'node:events';
import {now, seconds, readJob, runJob} from '../lib/common.mjs';

const job = readJob();
// The size of the small message's encoding, so the same bytes cross the socket.
const MESSAGE = Buffer.alloc(35, 0x61);

async function pingPong() {
	const child = spawn(process.execPath, ['-e', 'process.stdin.on("data", (d) => process.stdout.write(d))'], {
		stdio: ['pipe', 'pipe', 'inherit'],
	});
	const n = job.roundTrips;
	let done = 0;
	let t0;
	await new Promise((resolve, reject) => {
		child.on('error', reject);
		child.stdout.on('data', () => {
			if (++done === n) resolve();
			else child.stdin.write(MESSAGE);
		});
		t0 = now();
		child.stdin.write(MESSAGE);
	});
	const t1 = now();
	child.stdin.end();
	await once(child, 'exit');
	return (seconds(t0, t1) * 1e6) / n;
}

if (job.scenario !== 'pingpong') throw new Error(`node-stream measures only the ping-pong scenario, not ${job.scenario}`);
await runJob(job, pingPong);
