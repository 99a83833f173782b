// Child for Node's child_process.fork (and Bun.spawn with ipc, which offers the
// same process.send / process.on('message') API). No imports: its start-up
// cost is Node's (or Bun's) own.
//   argv: <mode> <n>
//   sink   count {k:'t'} messages, reply {k:'count', n: <count so far>} after every n-th
//   source on {k:'go'}, send n small messages
//   echo   send every message back
// Every mode sends {k:'ready'} first and exits on {k:'exit'}.
const mode = process.argv[2];
const n = Number(process.argv[3]);
let count = 0;

process.on('message', message => {
	if (message !== null && typeof message === 'object' && message.k === 'exit') {
		process.exit(0);
	}
	if (mode === 'echo') {
		process.send(message);
	} else if (mode === 'sink') {
		if (message.k === 't' && ++count % n === 0) process.send({k: 'count', n: count});
	} else if (mode === 'source') {
		if (message.k === 'go') {
			for (let i = 0; i < n; i++) process.send({k: 't', i, payload: 'hello world'});
		}
	}
});

process.send({k: 'ready'});
