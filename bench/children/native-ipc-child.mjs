// Child for native-ipc's fork(): the same protocol as node-child.mjs, spoken
// through native-ipc's child API and read with getEachMessage().
//   argv: <mode> <n>
//   sink   count {k:'t'} messages, reply {k:'count', n: <count so far>} after every n-th
//   source on {k:'go'}, send n small messages (await only the last)
//   echo   send every message back
// Every mode sends {k:'ready'} first and exits on {k:'exit'}.
import {sendMessage, getEachMessage} from '../../index.mjs';

const mode = process.argv[2];
const n = Number(process.argv[3]);
const fail = error => {
	console.error(error);
	process.exit(1);
};

sendMessage({k: 'ready'}).catch(fail);

let count = 0;
for await (const message of getEachMessage()) {
	if (message !== null && typeof message === 'object' && message.k === 'exit') break;
	if (mode === 'echo') {
		sendMessage(message).catch(fail);
	} else if (mode === 'sink') {
		if (message.k === 't' && ++count % n === 0) await sendMessage({k: 'count', n: count});
	} else if (mode === 'source') {
		if (message.k === 'go') {
			let last;
			for (let i = 0; i < n; i++) last = sendMessage({k: 't', i, payload: 'hello world'});
			await last;
		}
	}
}
process.exit(0);
