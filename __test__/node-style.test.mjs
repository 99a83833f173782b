// Node-style and Bun-style APIs (issue: send/'message'/'disconnect', handle passing, the ipc callback).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {once} from 'node:events';
import {execFileSync} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import {mkdtempSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fork, fixture, stillRunningAfter} from './helpers.mjs';


const read = async (socket) => {
  socket.setEncoding('utf8');
  let text = '';
  socket.on('data', (chunk) => {
    text += chunk;
  });
  await once(socket, 'end');
  return text;
};

test("send() with a callback, 'message' and 'disconnect' events, connected", async () => {
  const subprocess = fork(fixture('n-echo.mjs'));
  const messages = [];
  subprocess.on('message', (message) => messages.push(message));
  const written = [];
  assert.equal(subprocess.send('a', (error) => written.push(error)), true);
  assert.equal(subprocess.send({b: 2}), true);
  while (messages.length < 2) {
    await once(subprocess, 'message');
  }
  assert.deepEqual(messages, [{echo: 'a'}, {echo: {b: 2}}]);
  assert.deepEqual(written, [null]);
  assert.equal(subprocess.connected, true);
  const disconnected = once(subprocess, 'disconnect');
  subprocess.send('bye');
  await disconnected;
  assert.equal(subprocess.connected, false);
  await subprocess;
});

test('the subprocess stays a fast-properties object, its `connected` a data property that follows the channel', () => {
  // A getter put in place of ChildProcess's own `connected` turned the object into a dictionary-mode one, whose
  // every property read (`subprocess.sendMessage` in a loop) was a hash lookup.
  const output = execFileSync(process.execPath, ['--allow-natives-syntax', fileURLToPath(fixture('fast-subprocess.mjs'))], {
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(output), {open: {fast: true, connected: true}, ended: {fast: true, connected: false}});
});

test('send() and sendMessage() share one queue and one order', async () => {
  const subprocess = fork(fixture('n-echo.mjs'));
  const messages = [];
  subprocess.on('message', (message) => messages.push(message.echo));
  for (let i = 0; i < 50; i++) {
    if (i % 2 === 0) {
      subprocess.send(i);
    } else {
      subprocess.sendMessage(i);
    }
  }
  while (messages.length < 50) {
    await once(subprocess, 'message');
  }
  assert.deepEqual(messages, Array.from({length: 50}, (_, i) => i));
  subprocess.send('bye');
  await subprocess;
});

test('send() returns false once the queue is over its high-water mark', async () => {
  const subprocess = fork(fixture('n-unref.mjs'), ['ref'], {buffer: false});
  // Sends still queued when the child is killed fail; without callbacks Node reports them as 'error'.
  const failures = [];
  subprocess.on('error', (error) => failures.push(error.code));
  subprocess.kill('SIGSTOP');
  let result = true;
  for (let i = 0; i < 64 && result; i++) {
    result = subprocess.send('x'.repeat(256 * 1024));
  }
  assert.equal(result, false);
  subprocess.kill('SIGCONT');
  subprocess.kill();
  const error = await subprocess.catch((error_) => error_);
  assert.equal(error.signal, 'SIGTERM');
  assert.ok(failures.every((code) => code === 'ERR_IPC_CHANNEL_CLOSED'));
});

test('send() after disconnect: ERR_IPC_CHANNEL_CLOSED thrown without a callback, given to the callback otherwise', async () => {
  const output = execFileSync(process.execPath, [
    '-e',
    `import(${JSON.stringify(new URL('../index.mjs', import.meta.url).href)}).then(({fork}) => {
      const sub = fork(${JSON.stringify(fileURLToPath(fixture('n-send-after-disconnect.mjs')))}, [], {stdio: ['ignore', 'inherit', 'inherit']});
      return sub;
    })`,
  ]);
  assert.equal(output.toString(), '{"thrown":"ERR_IPC_CHANNEL_CLOSED","callback":"ERR_IPC_CHANNEL_CLOSED"}');
  const subprocess = fork(fixture('n-echo.mjs'));
  subprocess.disconnect();
  assert.throws(() => subprocess.send('x'), {code: 'ERR_IPC_CHANNEL_CLOSED'});
  const [error] = await new Promise((resolve) => subprocess.send('x', (...args) => resolve(args)));
  assert.equal(error.code, 'ERR_IPC_CHANNEL_CLOSED');
  subprocess.disconnect();
  await subprocess;
});

test('an unsupported sendHandle is a TypeError and nothing is sent', async () => {
  const subprocess = fork(fixture('n-echo.mjs'));
  for (const handle of [{}, 42, new URL('file:///tmp')]) {
    assert.throws(() => subprocess.send('x', handle), {
      name: 'TypeError',
      message: /^subprocess\.send\(\): the handle must be a net\.Server or a net\.Socket, not /,
    });
  }
  assert.throws(() => subprocess.send('x', new net.Socket()), /the net.Socket must be connected before it can be sent/);
  const unlistened = net.createServer();
  assert.throws(() => subprocess.send('x', unlistened), /the net.Server must be listening before it can be sent/);
  const [reply] = await Promise.all([once(subprocess, 'message'), subprocess.send('after')]);
  assert.deepEqual(reply[0], {echo: 'after'});
  subprocess.send('bye');
  await subprocess;
});

test("child 'message' listeners keep it alive; unref() lets it exit", async () => {
  const kept = fork(fixture('n-unref.mjs'), ['ref']);
  assert.equal(await kept.getOneMessage(), 'ready');
  assert.ok(await stillRunningAfter(kept, 500));
  kept.disconnect();
  await kept;
  const released = await fork(fixture('n-unref.mjs'), ['unref']);
  assert.equal(released.exitCode, 0);
  assert.deepEqual(released.ipcOutput, ['ready']);
});

for (const kind of ['TCP', 'Unix']) {
  test(`a ${kind} net.Server passed to the child accepts connections there, some handled by each process`, async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'native-ipc-'));
    const server = net.createServer((socket) => socket.end('parent'));
    server.listen(kind === 'TCP' ? {port: 0, host: '127.0.0.1'} : {path: path.join(directory, 'server.sock')});
    await once(server, 'listening');
    const subprocess = fork(fixture('n-echo.mjs'));
    subprocess.send({cmd: 'take-server'}, server);
    const [[ready]] = await Promise.all([once(subprocess, 'message')]);
    assert.deepEqual(ready, {ready: 'server'});
    const address = server.address();
    const answers = new Set();
    // Both processes accept on the same listening socket; which one wins a connection is the kernel's
    // choice, so connect until each has answered at least once.
    for (let i = 0; i < 1000 && answers.size < 2; i++) {
      const socket = kind === 'TCP' ? net.connect(address.port, '127.0.0.1') : net.connect(address);
      answers.add(await read(socket));
      if (i % 20 === 19) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    assert.deepEqual([...answers].sort(), ['child', 'parent']);
    server.close();
    subprocess.send('bye');
    await subprocess;
    rmSync(directory, {recursive: true, force: true});
  });

  test(`a connected ${kind} net.Socket passed to the child reads and writes there, and is closed here`, async () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'native-ipc-'));
    const server = net.createServer();
    server.listen(kind === 'TCP' ? {port: 0, host: '127.0.0.1'} : {path: path.join(directory, 'server.sock')});
    await once(server, 'listening');
    const address = server.address();
    const client = kind === 'TCP' ? net.connect(address.port, '127.0.0.1') : net.connect(address);
    const [[accepted]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
    const subprocess = fork(fixture('n-echo.mjs'));
    const sent = new Promise((resolve) => subprocess.send({cmd: 'take-socket'}, client, resolve));
    assert.equal(await sent, null);
    assert.equal(client.destroyed, true);
    accepted.write('ping');
    assert.equal(await read(accepted), 'child read ping');
    server.close();
    subprocess.send('bye');
    await subprocess;
    rmSync(directory, {recursive: true, force: true});
  });
}

test('a socket passed from the child arrives in the parent as a working net.Socket', async () => {
  const directory = mkdtempSync(path.join(tmpdir(), 'native-ipc-'));
  const socketPath = path.join(directory, 'server.sock');
  const server = net.createServer((socket) => socket.end('hello through the child'));
  server.listen(socketPath);
  await once(server, 'listening');
  const subprocess = fork(fixture('n-echo.mjs'));
  subprocess.send({cmd: 'send-socket', path: socketPath});
  const [message, handle] = await once(subprocess, 'message');
  assert.deepEqual(message, {cmd: 'yours'});
  assert.ok(handle instanceof net.Socket);
  assert.equal(await read(handle), 'hello through the child');
  server.close();
  subprocess.send('bye');
  await subprocess;
  rmSync(directory, {recursive: true, force: true});
});

test('messages and handles keep their order', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const subprocess = fork(fixture('n-echo.mjs'));
  const messages = [];
  subprocess.on('message', (message) => messages.push(message));
  subprocess.send(1);
  subprocess.sendMessage(2);
  subprocess.send({cmd: 'take-server'}, server);
  subprocess.send(3);
  while (messages.length < 4) {
    await once(subprocess, 'message');
  }
  assert.deepEqual(messages, [{echo: 1}, {echo: 2}, {ready: 'server'}, {echo: 3}]);
  server.close();
  subprocess.send('bye');
  await subprocess;
});

test('Bun-style: the ipc(message, subprocess) option is called for each message from the child', async () => {
  const seen = [];
  let self;
  const subprocess = fork(fixture('n-bun-style.mjs'), [], {
    ipc(message, from) {
      seen.push(message);
      self = from;
    },
  });
  const {ipcOutput} = await subprocess;
  assert.deepEqual(seen, [{n: 1}, {n: 2}, {n: 3}]);
  assert.deepEqual(ipcOutput, seen);
  assert.equal(self, subprocess);
});

test('a handle sent to a peer that exits without taking it is closed, not leaked', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect(server.address().port, '127.0.0.1');
  const [[accepted]] = await Promise.all([once(server, 'connection'), once(client, 'connect')]);
  const ended = once(accepted, 'end');
  accepted.resume();
  // idle.mjs never listens and exits: the descriptor it received (or that was in flight) must go with it,
  // so the other end of the connection sees it closed.
  const subprocess = fork(fixture('idle.mjs'));
  await new Promise((resolve, reject) => subprocess.send('take this', client, (error) => (error ? reject(error) : resolve())));
  const {exitCode} = await subprocess;
  assert.equal(exitCode, 0);
  await ended;
  server.close();
});
