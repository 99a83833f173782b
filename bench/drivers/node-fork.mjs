// Driver: Node's own child_process.fork IPC. Run by run.mjs as
//   node bench/drivers/node-fork.mjs '<job json>'
import {fork} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import {readJob, runJob} from '../lib/common.mjs';
import {Channel, scenarioBody} from '../lib/callback-scenarios.mjs';

const childPath = fileURLToPath(new URL('../children/node-child.mjs', import.meta.url));
const job = readJob();

const transport = {
	spawn(mode, n) {
		const ch = new Channel();
		const child = fork(childPath, [mode, String(n)], {serialization: job.serialization});
		child.on('message', message => ch.deliver(message));
		child.on('error', error => ch.closed(error.message));
		ch.exited = new Promise(resolve => {
			child.on('exit', (code, signal) => {
				ch.closed(`exit code ${code}, signal ${signal}`);
				resolve();
			});
		});
		ch.send = message => child.send(message);
		ch.kill = () => child.kill('SIGKILL');
		ch.pid = child.pid;
		return ch;
	},
};

await runJob(job, scenarioBody(job, transport));
