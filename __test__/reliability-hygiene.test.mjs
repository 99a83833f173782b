// ipc-reliability.md §5 F (35–39) and the leak checks of B13: the channel reaches only the intended child, is
// invisible from outside, every descriptor is close-on-exec, a bogus inherited channel is refused cleanly, and
// many forks leave no descriptor or subprocess object behind.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {closeSync, openSync, readFileSync, readdirSync, statSync} from 'node:fs';
import net from 'node:net';
import {once} from 'node:events';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {fork, spawn, fixture, settle} from './helpers.mjs';
import {fixturePath, gc, openFds, settleMemory, socketsOf} from './fixtures/r-helpers.mjs';

const O_CLOEXEC = 0o2000000;
const isCloexec = (fd, pid = 'self') =>
  (Number.parseInt(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^flags:\s+(\d+)/m)[1], 8) & O_CLOEXEC) !== 0;

/** Sockets this process opened while `start` ran (the channel end a fork() keeps). */
const newSockets = (before) => [...socketsOf()].filter(([fd, target]) => before.get(fd) !== target);

test("a child's own fork() passes its Node flags on, but native-ipc's preload only with a channel, and once", async () => {
  const subprocess = fork(fixture('r-fork-argv.mjs'), {execArgv: ['--no-warnings']});
  const report = await subprocess.getOneMessage();
  await subprocess;
  // The fixture, an ES module, is preloaded with `--import`, the CommonJS probe with `--require` (see
  // preload.test.mjs); the preload takes its flags out of process.execArgv, so that neither passes them on.
  const flags = ['--no-warnings'];
  assert.deepEqual(subprocess.spawnargs.slice(1, -1), [...flags, '--import', new URL('../index.mjs', import.meta.url).href]);
  assert.deepEqual(report, {
    own: flags,
    withIpc: {started: [...flags, '--require', fileURLToPath(new URL('../lib/load.js', import.meta.url))], seen: flags},
    withoutIpc: {started: flags, seen: flags},
  });
});

test('F35, F36, F38: a grandchild (/bin/sh or Node fork) sees neither the channel descriptor nor its variable; every socket of the child is close-on-exec, a received handle too', async () => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const subprocess = fork(fixture('r-probe.mjs'));
  subprocess.send('handle', server);
  const report = await subprocess.getOneMessage();
  server.close();
  await subprocess;

  const channelEnd = report.fds.find(({fd}) => fd === 3);
  assert.match(channelEnd.target, /^socket:\[\d+\]$/);
  assert.equal(report.handleKind, 'Server');
  // Sockets only: a pipe the test runner itself leaves inheritable is not the addon's.
  assert.deepEqual(
    report.fds.filter(({fd, target, cloexec}) => fd > 2 && target.startsWith('socket:') && !cloexec),
    [],
  );
  const childSockets = new Set(report.fds.filter(({fd, target}) => fd > 2 && target.startsWith('socket:')).map(({target}) => target));
  assert.ok(childSockets.size >= 2, 'the channel and the received server are sockets of the child');
  for (const grandchild of [report.sh, report.node]) {
    assert.deepEqual(grandchild.targets.filter((target) => childSockets.has(target)), []);
    assert.deepEqual(grandchild.env, []);
  }
});

test("F38: the parent's end of every channel is close-on-exec, so no other program the parent starts inherits it", async () => {
  const before = socketsOf();
  const subprocess = fork(fixture('pending-receive.mjs'));
  const added = newSockets(before);
  assert.equal(added.length, 1, 'fork() keeps exactly one descriptor: its end of the channel');
  assert.ok(isCloexec(added[0][0]));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  // And a plain child of the parent, started while the channel is open, does not see it.
  const probe = `process.stdout.write(JSON.stringify(require('fs').readdirSync('/proc/self/fd').map((fd) => { try { return require('fs').readlinkSync('/proc/self/fd/' + fd); } catch { return ''; } })))`;
  const targets = JSON.parse(execFileSync(process.execPath, ['-e', probe]));
  assert.ok(!targets.includes(added[0][1]));
  await subprocess.sendMessage('go');
  await subprocess;
});

const socketFilesIn = (directory) => {
  try {
    return readdirSync(directory).filter((name) => {
      try {
        return statSync(path.join(directory, name)).isSocket();
      } catch {
        return false;
      }
    });
  } catch {
    return [];
  }
};

test('F37: no visible endpoint: no socket file on disk, no path or abstract name for either end, nothing but Unix sockets', async () => {
  const directories = [tmpdir(), process.cwd(), process.env.XDG_RUNTIME_DIR].filter(Boolean);
  const filesBefore = directories.map(socketFilesIn);
  const before = socketsOf();
  const subprocess = fork(fixture('pending-receive.mjs'));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const [[, parentEnd]] = newSockets(before);
  const childEnd = socketsOf(subprocess.pid).get(3);
  assert.deepEqual(directories.map(socketFilesIn), filesBefore);
  // /proc/net/unix: "Num RefCount Protocol Flags Type St Inode [Path]"; a named or abstract socket has a path.
  const unix = new Map(
    readFileSync('/proc/net/unix', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .map((fields) => [`socket:[${fields[6]}]`, fields[7]]),
  );
  for (const end of [parentEnd, childEnd]) {
    assert.ok(unix.has(end), `${end} is a Unix socket`);
    assert.equal(unix.get(end), undefined, `${end} has no path`);
  }
  // Every socket the child holds is an anonymous Unix socket: no TCP or UDP listener was made for the channel.
  for (const target of socketsOf(subprocess.pid).values()) {
    assert.ok(unix.has(target), `${target} of the child is a Unix socket`);
    assert.equal(unix.get(target), undefined);
  }
  await subprocess.sendMessage('go');
  await subprocess;
});

test('F39: a bogus inherited channel (closed fd, regular file, /dev/null, unknown mode, malformed value) is refused with a clear error; the child does not crash', async () => {
  const file = openSync(fixturePath('r-probe.mjs'), 'r');
  try {
    for (const [spec, stdio, cause] of [
      ['921:advanced:1000', 'ignore', /cannot be used: Bad file descriptor/],
      ['3:advanced:1000', ['ignore', 'pipe', 'inherit', file], /file descriptor 3 is not a socket/],
      ['0:advanced:1000', ['ignore', 'pipe', 'inherit'], /file descriptor 0 is not a socket/],
      ['3:v8:1000', ['ignore', 'pipe', 'inherit', file], /serialization must be 'advanced' or 'json'/],
      ['garbage', 'ignore', /./],
      ['', 'ignore', /./],
    ]) {
      const script = `import('${new URL('../index.mjs', import.meta.url)}').then(async ({sendMessage, getOneMessage}) => {
        const outcome = {};
        for (const [name, call] of [['sendMessage', () => sendMessage('x')], ['getOneMessage', () => getOneMessage()]]) {
          try { await call(); outcome[name] = 'ok'; } catch (error) { outcome[name] = {code: error.code, message: error.message, cause: error.cause?.message}; }
        }
        process.stdout.write(JSON.stringify(outcome));
      })`;
      const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        env: {...process.env, NATIVE_IPC_CHANNEL: spec},
        stdio: Array.isArray(stdio) ? stdio.map((item, index) => (index === 1 ? 'pipe' : item)) : ['ignore', 'pipe', 'inherit'],
      });
      const outcome = JSON.parse(output);
      for (const name of ['sendMessage', 'getOneMessage']) {
        assert.equal(outcome[name].code, 'ERR_IPC_NOT_ENABLED', `${spec}: ${name}`);
        assert.match(outcome[name].message, new RegExp(`^${name}\\(\\) can only be used if the \`ipc\` option is \`true\``));
        assert.match(outcome[name].cause, cause, spec);
      }
    }
  } finally {
    closeSync(file);
  }
});

test(
  'F39: a malformed NATIVE_IPC_CHANNEL value is named as such in the error',
  () => {
    const script = `import('${new URL('../index.mjs', import.meta.url)}').then(({sendMessage}) => {
      try { sendMessage('x'); } catch (error) { process.stdout.write(String(error.cause?.message)); }
    })`;
    const output = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      env: {...process.env, NATIVE_IPC_CHANNEL: 'garbage'},
    }).toString();
    assert.match(output, /NATIVE_IPC_CHANNEL/);
  },
);

/** The result of a subprocess once its stdio pipes closed too (they may close after the result settles). */
const finished = async (subprocess) => {
  const [outcome] = await Promise.all([settle(subprocess), once(subprocess, 'close')]);
  return outcome;
};

test('leaks: 1000 subprocesses with a channel (spawn ipc: true, 20 at a time) leave the parent’s open-fd count where it started', async () => {
  await finished(spawn('/bin/true', [], {ipc: true}));
  const before = openFds();
  for (let batch = 0; batch < 50; batch++) {
    const results = await Promise.all(Array.from({length: 20}, () => finished(spawn('/bin/true', [], {ipc: true}))));
    for (const {ok, error} of results) {
      assert.ok(ok, error?.message);
    }
  }
  assert.equal(openFds(), before);
});

test('leaks: 30 Node children forked, exchanging a message, and exited leave the fd count where it started (1000 in npm run stress)', async () => {
  await finished(fork(fixture('idle.mjs')));
  const before = openFds();
  for (let batch = 0; batch < 3; batch++) {
    const results = await Promise.all(Array.from({length: 10}, () => finished(fork(fixture('idle.mjs')))));
    assert.ok(results.every(({ok, result}) => ok && result.exitCode === 0 && result.ipcOutput[0] === 'ready'));
  }
  assert.equal(openFds(), before);
});

test('B13: finished subprocesses are garbage-collected (a FinalizationRegistry sees 8 of 8)', async () => {
  let collected = 0;
  const registry = new FinalizationRegistry(() => {
    collected++;
  });
  await (async () => {
    const subprocesses = Array.from({length: 8}, () => fork(fixture('idle.mjs')));
    for (const subprocess of subprocesses) {
      registry.register(subprocess, undefined);
    }
    await Promise.all(subprocesses.map((subprocess) => settle(subprocess)));
  })();
  for (let round = 0; round < 20 && collected < 8; round++) {
    await settleMemory();
  }
  gc();
  assert.equal(collected, 8);
});
