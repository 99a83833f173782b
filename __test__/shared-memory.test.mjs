// Values of 8 MiB or more travel through shared memory (PROTOCOL.md §4.6, src/shared.rs): a sealed memfd that
// the receiver maps copy-on-write. These tests run real children and look at what each process maps
// (/proc/<pid>/maps) to tell a value that went through a memfd, or was passed on as the same file, from a copy.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {createHash} from 'node:crypto';
import {existsSync, readdirSync, readlinkSync} from 'node:fs';
import {fileURLToPath} from 'node:url';
import {fork, spawn, fixture, settle} from './helpers.mjs';
import {memfdFiles} from './fixtures/memfd-files.mjs';
import {KIND, collect, frame, hello, settleMemory} from './fixtures/r-helpers.mjs';

const MiB = 1024 * 1024;
const linux = process.platform === 'linux';
const skip = linux ? false : 'shared memory is used on Linux only';

const pattern = (size, seed) => {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed) & 0xff;
  return buf;
};

// A send whose outcome the test looks at while it is pending: {resolved, error}, filled in as it settles.
const tracked = (sending) => {
  const outcome = {resolved: false, error: undefined};
  sending.then(() => { outcome.resolved = true; }, (error) => { outcome.error = error; });
  return outcome;
};

const startEcho = async (options) => {
  const subprocess = fork(fixture('s-shared-echo.mjs'), [], options);
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const echo = async (value, op = 'echo') => {
    const answer = subprocess.getOneMessage();
    await subprocess.sendMessage({op, value});
    return answer;
  };
  const done = async () => {
    await subprocess.sendMessage('done');
    await subprocess;
  };
  return {subprocess, echo, done};
};

test('values of 8 MiB and more of every binary and string form arrive exactly, through memory the child maps from a memfd', {skip}, async () => {
  const {echo, done} = await startEcho();
  const bytes = pattern(10 * MiB + 5, 1);
  const twoByte = 'é€'.repeat(4 * MiB) + '\ud800';   // a lone surrogate survives too
  const values = [
    ['Buffer', bytes],
    ['Uint8Array at an offset', new Uint8Array(bytes.buffer, bytes.byteOffset + 3, 9 * MiB)],
    ['Float64Array', new Float64Array(MiB + 5).map((_, i) => i / 7)],
    ['Int16Array', new Int16Array(5 * MiB).map((_, i) => i - 30000)],
    ['DataView', new DataView(bytes.buffer, bytes.byteOffset + 1, 9 * MiB)],
    ['ArrayBuffer', pattern(9 * MiB, 9).buffer.slice(0, 9 * MiB)],
    ['one-byte string', 'native-ipc '.repeat(MiB)],
    ['two-byte string', twoByte],
    // Its UTF-8 form, cut to the string's length plus 4 bytes, could end at exactly its length: not ASCII.
    ['string that starts and ends with non-ASCII', '\u00e9' + 'a'.repeat(9 * MiB) + '\u20ac'],
  ];
  for (const [what, value] of values) {
    const before = memfdFiles().length;
    const {value: back, files} = await echo(value);
    assert.ok(files.length > 0, `${what}: the child held it in a memfd mapping`);
    assert.ok(memfdFiles().length > before, `${what}: the echo is mapped here too`);
    assert.equal(Object.prototype.toString.call(back), Object.prototype.toString.call(value), what);
    if (typeof value === 'string') {
      assert.ok(back === value, `${what} came back equal`);
    } else {
      const bytesOf = (v) => (v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength));
      assert.equal(back.byteLength, value.byteLength, what);
      assert.ok(bytesOf(back).equals(bytesOf(value)), `${what} came back equal`);
    }
  }
  await done();
});

test('a value held twice in one message arrives as one object, and small and large values mix in order', {skip}, async () => {
  const {echo, done} = await startEcho();
  const big = pattern(9 * MiB, 2);
  const message = {a: big, list: [1, 'two', big, pattern(100, 3), 'x'.repeat(9 * MiB)], map: new Map([['k', big]])};
  const {value: back} = await echo(message);
  assert.ok(back.a.equals(big));
  assert.equal(back.list[2], back.a);
  assert.equal(back.map.get('k'), back.a);
  assert.deepEqual(back.list.slice(0, 2), [1, 'two']);
  assert.ok(back.list[3].equals(pattern(100, 3)));
  assert.equal(back.list[4], 'x'.repeat(9 * MiB));
  await done();
});

test('a Buffer echoed unchanged goes back as the same file; one the child changed goes back as a new one, changed', {skip}, async () => {
  const {echo, done} = await startEcho();
  const sent = pattern(9 * MiB, 4);
  const same = await echo(sent);
  assert.ok(same.value.equals(sent));
  const mine = memfdFiles();
  assert.ok(same.files.some((file) => mine.includes(file)), 'the parent maps the very file the child received');

  const changed = await echo(sent, 'change');
  const expected = Buffer.from(sent);
  expected[0] ^= 0xff;
  expected[expected.length - 1] ^= 0xff;
  assert.ok(changed.value.equals(expected), 'the change arrived');
  assert.ok(sent[0] === pattern(1, 4)[0], 'the parent\'s own Buffer is untouched');
  const now = memfdFiles();
  assert.ok(!changed.files.some((file) => now.includes(file) && !mine.includes(file)), 'the changed Buffer went as a new file');
  await done();
});

test('a string echoed unchanged goes back as the same file, one-byte and two-byte alike', {skip}, async () => {
  const {echo, done} = await startEcho();
  for (const [name, sent] of [
    ['one-byte', 'native-ipc '.repeat(MiB)],
    // Two-byte (UTF-16 code units in the file): an emoji outside the BMP, and a letter of Latin-1's upper half.
    ['two-byte', '\u00e9t\u00e9 \ud83d\ude80 '.repeat(1.5 * MiB)],
  ]) {
    const before = memfdFiles();
    const same = await echo(sent);
    assert.equal(same.value, sent, name);
    const now = memfdFiles();
    const received = same.files.filter((file) => !before.includes(file));
    assert.ok(received.length > 0, `${name}: the child mapped a file for the string`);
    assert.ok(received.some((file) => now.includes(file)), `${name}: the parent maps the very file the child received`);
  }
  await done();
});

test('a string of characters up to U+00FF goes as one byte per character, one with any beyond as UTF-16', {skip}, async () => {
  for (const [name, sent, bytesPerCharacter] of [
    ['Latin-1', 'caf\u00e9 cr\u00e8me br\u00fbl\u00e9e '.repeat(MiB / 2), 1],
    ['beyond Latin-1', 'caf\u00e9 cr\u00e8me br\u00fbl\u00e9e \u20ac'.repeat(MiB / 2), 2],
  ]) {
    // A child of its own for each: what the child maps is then this string's file alone.
    const {echo, done} = await startEcho();
    const {value: back, mapped} = await echo(sent);
    assert.ok(back === sent, `${name}: came back equal`);
    const expected = bytesPerCharacter * sent.length;
    assert.ok(mapped >= expected && mapped < expected + MiB, `${name}: the child maps ${mapped} bytes for ${sent.length} characters`);
    await done();
  }
});

test('a shared Latin-1 string sent on to a peer that takes no shared memory goes inline as LATIN1, or as STRING16 to one that does not take that', {skip}, async () => {
  const sent = 'caf\u00e9 cr\u00e8me '.repeat(MiB);
  const {echo, done} = await startEcho();
  for (const latin1 of [true, false]) {
    // A raw peer: its handshake names no shared memory, and LATIN1 or not.
    const peer = spawn(process.execPath, [fileURLToPath(fixture('v-raw-echo.cjs')), 'digest'], {ipc: true, stdio: ['pipe', 'pipe', 'inherit']});
    const output = collect(peer.stdout);
    peer.stdin.end(Buffer.concat([hello({l: latin1}), frame(KIND.message, Buffer.from([0xc3]))]));
    assert.equal(await peer.getOneMessage(), true);
    // The echo arrives as the file the child received; sent on in the turn it arrived in, the parent still
    // has that file's bytes for it.
    const {value} = await echo(sent);
    await peer.sendMessage(value);
    peer.disconnect();
    const lines = (await output.end).trim().split('\n');
    assert.equal((await peer).exitCode, 0);
    const [type, bytes] = latin1 ? [14, Buffer.from(sent, 'latin1')] : [3, Buffer.from(sent, 'utf16le')];
    const header = Buffer.from([0xc9, 0, 0, 0, 0, type]);
    header.writeUInt32BE(bytes.length, 1);
    const payload = Buffer.concat([header, bytes]);
    const digest = createHash('sha256').update(payload).digest('hex');
    assert.equal(lines[1], `${KIND.message} ${payload.toString('hex', 0, 16)}... ${payload.length} ${digest}`, latin1 ? 'LATIN1' : 'STRING16');
  }
  await done();
});

test('the sender may change its Buffer as soon as sendMessage() returns; a received Buffer may be written to', {skip}, async () => {
  const {subprocess, done} = await startEcho();
  const value = pattern(9 * MiB, 5);
  const original = Buffer.from(value);
  const answer = subprocess.getOneMessage();
  const sending = subprocess.sendMessage({op: 'echo', value});
  value.fill(0);
  await sending;
  const {value: back} = await answer;
  assert.ok(back.equals(original));
  back.fill(9);
  assert.equal(back[12345], 9);
  await done();
});

test('an echo that does not read the value holds no copy of it: the child\'s memory grows by far less than 64 MiB', {skip}, async () => {
  const {echo, done} = await startEcho();
  const {rss: before} = await echo('warm-up');
  const {value: back, rss: after} = await echo(pattern(64 * MiB, 6));
  assert.equal(back.length, 64 * MiB);
  assert.ok(after - before < 16 * MiB, `the child grew by ${after - before} bytes`);
  await done();
});

test('Node-style send() of a shared value returns false until the child took it, as for a large inline message', {skip}, async () => {
  const {subprocess} = await startEcho();
  const answer = subprocess.getOneMessage();
  let called;
  const returned = subprocess.send({op: 'echo', value: pattern(9 * MiB, 8)}, (error) => {
    called = error;
  });
  assert.equal(returned, false);
  const {value} = await answer;
  assert.equal(value.length, 9 * MiB);
  assert.equal(called, null, 'the callback ran, without an error');
  // The child took the value (its TAKEN frame comes before its answer): nothing waits any more.
  assert.equal(subprocess.send('done'), true);
  await subprocess;
});

test('strict sends of shared values are acknowledged; json mode sends the same values inline', {skip}, async () => {
  for (const serialization of ['advanced', 'json']) {
    const {subprocess, done} = await startEcho({serialization});
    const value = 'y'.repeat(9 * MiB);
    const answer = subprocess.getOneMessage();
    await subprocess.sendMessage({op: 'echo', value}, {strict: true});
    const {value: back, files} = await answer;
    assert.equal(back, value);
    assert.equal(files.length > 0, serialization === 'advanced', `${serialization}: ${files.length} memfd mappings`);
    await done();
  }
});

test('a child that never reads: shared sends stop resolving past a window, are refused past the queue limit, and settle when it is killed', {skip}, async () => {
  const subprocess = fork(fixture('r-stall.mjs'));
  assert.equal(await subprocess.getOneMessage(), 'ready');
  // 32 MiB values go through shared memory even while earlier ones wait (smaller ones would then go inline).
  const data = pattern(32 * MiB, 7);
  const outcomes = [];
  let refusal;
  while (refusal === undefined && outcomes.length < 40) {
    const outcome = tracked(subprocess.sendMessage(data));
    await new Promise((resolve) => setImmediate(resolve));
    if (outcome.error?.code === 'ERR_IPC_QUEUE_FULL') refusal = outcome.error;
    else outcomes.push(outcome);
  }
  assert.match(refusal?.message ?? '', /^subprocess\.sendMessage\(\) cannot queue more: \d+ bytes wait for the subprocess to read them, above the limit of 134217728 bytes\./);
  // The first 32 MiB resolve at once, as bytes the kernel took would; the rest wait for the child to take them.
  assert.equal(outcomes[0].resolved, true);
  assert.ok(outcomes.slice(1).every((o) => !o.resolved && o.error === undefined), 'sends past the window wait');
  assert.ok(outcomes.length >= 4 && outcomes.length * 32 <= 128 + 32, `${outcomes.length} sends of 32 MiB were accepted`);
  subprocess.kill('SIGKILL');
  await settle(subprocess);
  await new Promise((resolve) => setImmediate(resolve));
  for (const {resolved, error} of outcomes) {
    assert.ok(resolved || error?.code === 'ERR_IPC_CHANNEL_CLOSED', error?.message);
  }
});

test('a TAKEN frame settles only the sends whose values it counts: the rest still wait past the window', {skip}, async () => {
  const subprocess = spawn(process.execPath, [new URL(fixture('r-take-one.cjs')).pathname], {ipc: true, stdio: ['ignore', 'ignore', 'inherit']});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const data = pattern(32 * MiB, 10);
  const outcomes = [0, 1, 2].map(() => tracked(subprocess.sendMessage(data)));
  // The peer holds all three and says it took the first: 64 MiB still wait, so the third send (past the 32 MiB
  // window) does not settle.
  assert.equal(await subprocess.getOneMessage(), 'took one');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(outcomes.map((o) => o.resolved), [true, true, false]);
  assert.equal(outcomes[2].error, undefined);
  subprocess.kill('SIGKILL');
  await settle(subprocess);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(outcomes[2].error?.code, 'ERR_IPC_CHANNEL_CLOSED');
});

// Sends `values` to the echo child all at once, checks the echoes, and returns the memfds the child mapped.
const burst = async (subprocess, values) => {
  const sends = values.map((value) => subprocess.sendMessage({op: 'echo', value}));
  const seen = new Set();
  for (const value of values) {
    const answer = await subprocess.getOneMessage();
    assert.ok(typeof value === 'string' ? answer.value === value : answer.value.equals(value));
    for (const file of answer.files) seen.add(file);
  }
  await Promise.all(sends);
  return seen;
};

test('values of 8 to 32 MiB sent while the peer has not taken an earlier one stream inline until a pause; answered ones are shared', {skip}, async () => {
  const {subprocess, echo, done} = await startEcho();
  // Buffers and strings alike.
  const values = [pattern(9 * MiB, 11), 'b'.repeat(9 * MiB), pattern(9 * MiB, 13), '\u00e9'.repeat(9 * MiB)];
  // A burst: sent before the child can have taken the first, which alone goes through a new memfd.
  const seen = await burst(subprocess, values);
  assert.equal(seen.size, 1, 'the child received one memfd, the first value\'s');
  // Right after the burst the stream goes on inline, although the child took everything.
  for (const file of (await echo(pattern(9 * MiB, 15))).files) {
    assert.ok(seen.has(file), 'no new memfd within the stream');
  }
  // After a pause of a second (STREAM_GAP_MS in codec.js), and then as long as each is taken before the next
  // is sent (a request and its answer), every value is shared.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  for (const seed of [16, 17]) {
    const {value, files} = await echo(pattern(9 * MiB, seed));
    assert.ok(value.equals(pattern(9 * MiB, seed)));
    const fresh = files.filter((file) => !seen.has(file));
    assert.equal(fresh.length, 1, `value ${seed} came in a memfd of its own`);
    seen.add(fresh[0]);
  }
  await done();
});

const badPeer = async (how, pattern) => {
  const subprocess = spawn(process.execPath, [new URL(fixture('r-shared-peer.cjs')).pathname, how], {ipc: true, stdio: ['ignore', 'ignore', 'inherit']});
  await assert.rejects(subprocess.getOneMessage(), (error) => {
    assert.match(error.message, /^The IPC channel with the subprocess failed: /);
    assert.match(error.message, pattern);
    assert.equal(error.code, 'ERR_IPC_BAD_PAYLOAD');
    return true;
  });
  assert.equal(subprocess.connected, false);
  const {ok} = await settle(subprocess);
  assert.equal(ok, false);
};

test('a stream still ends after a pause when performance.now() and process.hrtime are faked (as test runners\' fake timers do)', {skip}, async () => {
  const {subprocess, echo, done} = await startEcho();
  const realNow = performance.now;
  const realHrtime = process.hrtime;
  performance.now = () => 0;
  process.hrtime = Object.assign(() => [0, 0], {bigint: () => 0n});
  try {
    const seen = await burst(subprocess, [21, 22].map((seed) => pattern(9 * MiB, seed)));
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const {files} = await echo(pattern(9 * MiB, 23));
    assert.equal(files.filter((file) => !seen.has(file)).length, 1, 'the value after the pause came in a memfd of its own');
  } finally {
    performance.now = realNow;
    process.hrtime = realHrtime;
  }
  await done();
});

// This process's descriptors and what they point to, once collections close no more: values of earlier tests
// may hold descriptors until collected, and their finalizers run a turn or more after the collection that found them.
const openDescriptors = () =>
  new Map(
    readdirSync('/proc/self/fd').map((fd) => {
      try {
        return [fd, readlinkSync(`/proc/self/fd/${fd}`)];
      } catch {
        return [fd, 'closed'];
      }
    }),
  );
const settledDescriptors = async () => {
  for (let tries = 0; ; tries++) {
    const n = openDescriptors().size;
    await settleMemory();
    if (openDescriptors().size === n || tries === 20) return openDescriptors();
  }
};

test('a peer\'s bad shared-memory values are refused with an error that names them, and their descriptors closed', {skip}, async () => {
  const before = await settledDescriptors();
  await badPeer('devnull', /shared-memory value whose descriptor is not a memfd/);
  if (existsSync('/dev/shm')) {
    await badPeer('unsealed', /shared-memory value in a memfd not sealed against writing and shrinking/);
  }
  await badPeer('short', /shared-memory value of 1048576 bytes from offset 0 in a memfd of 100 bytes/);
  await badPeer('twice', /SHARED value arrived without its descriptor/);
  // The value decoded before the bad one holds its mapping (and descriptor) until it is collected. Descriptors
  // of earlier tests may close meanwhile; none may be open now that was not before.
  const after = await settledDescriptors();
  const opened = [...after].filter(([fd, target]) => before.get(fd) !== target && target !== 'closed');
  assert.deepEqual(opened, [], 'every descriptor the peers passed was closed');
});
