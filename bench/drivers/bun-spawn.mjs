// Driver: Bun's Bun.spawn({ipc}). Run by run.mjs with the bun binary as
//   bun bench/drivers/bun-spawn.mjs '<job json>'
// The child is the same script as for Node's fork, run by Bun.
import {fileURLToPath} from 'node:url';
import {readJob, runJob} from '../lib/common.mjs';
import {Channel, scenarioBody} from '../lib/callback-scenarios.mjs';

const childPath = fileURLToPath(new URL('../children/node-child.mjs', import.meta.url));
const job = readJob();

const transport = {
	spawn(mode, n) {
		const ch = new Channel();
		const proc = Bun.spawn({
			cmd: [process.execPath, childPath, mode, String(n)],
			ipc: message => ch.deliver(message),
			serialization: job.serialization,
			stdio: ['ignore', 'inherit', 'inherit'],
		});
		ch.exited = proc.exited.then(code => ch.closed(`exit code ${code}`));
		ch.send = message => proc.send(message);
		ch.kill = () => proc.kill('SIGKILL');
		ch.pid = proc.pid;
		return ch;
	},
};

await runJob(job, scenarioBody(job, transport));
