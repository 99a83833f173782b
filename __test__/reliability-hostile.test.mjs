// ipc-reliability.md §5 D (25–30) and F 40: a peer that writes raw bytes to the socket after (or instead of) a
// valid handshake. Every case must end in a clear, typed error on every pending call and a closed channel,
// never a crash, a hang, or an allocation of the size a header claims (checked on this process's peak RSS).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {spawn as spawnPlain} from 'node:child_process';
import {writeSync} from 'node:fs';
import {createRequire} from 'node:module';
import {settle} from './helpers.mjs';
import {
  KIND,
  collect,
  exited,
  fixturePath,
  frame,
  hello,
  peakGrowthDuring,
  rawPeer,
} from './fixtures/r-helpers.mjs';

const MiB = 1024 * 1024;
// What a refused claim may cost this process at most: far below any size the tests claim.
const ALLOCATION_BOUND = 48 * MiB;

const message = (hex) => frame(KIND.message, Buffer.from(hex, 'hex'));
const advanced = (...frames) => Buffer.concat([hello(), ...frames]);

/**
 * Runs a raw peer that writes `bytes` and checks the outcome: the pending receive rejects with a message
 * matching `pattern` and the typed `code`, nothing is delivered, the channel is closed, and the result fails with
 * the same error once the peer exited.
 */
const expectRefused = async (bytes, pattern, code, {then = 'hold', options} = {}) => {
  const subprocess = rawPeer(bytes, then, options);
  const pending = subprocess.getOneMessage();
  await assert.rejects(pending, (error) => {
    assert.match(error.message, /^The IPC channel with the subprocess failed: /);
    assert.match(error.message, pattern);
    assert.equal(error.code, code);
    return true;
  });
  assert.equal(subprocess.connected, false);
  assert.throws(() => subprocess.sendMessage('more'), {code: 'ERR_IPC_CHANNEL_CLOSED'});
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.match(error.message, pattern);
  assert.equal(error.exitCode, 0);
  assert.deepEqual(error.ipcOutput, []);
};

test('D27: length prefixes of 2^31 and 2^32−1 are refused from the header: ERR_IPC_BAD_FRAME, no allocation', async () => {
  for (const length of [0x8000_0000, 0xffff_ffff]) {
    const {growth} = await peakGrowthDuring(() =>
      expectRefused(advanced(frame(KIND.message, Buffer.from('c0', 'hex'), length)), new RegExp(`frame of ${length} bytes, above the limit`), 'ERR_IPC_BAD_FRAME'),
    );
    assert.ok(growth < ALLOCATION_BOUND, `a claim of ${length} bytes raised the peak RSS by ${growth} bytes`);
  }
});

test('D27: with maxMessageSize at its maximum, a 2^32−5 claim (header + length past 32 bits) costs only the bytes that came', async () => {
  const sent = 4 * MiB;
  const {growth} = await peakGrowthDuring(async () => {
    const bytes = Buffer.concat([hello(), frame(KIND.message, Buffer.alloc(sent), 2 ** 32 - 5)]);
    const subprocess = rawPeer(bytes, 'eof', {maxMessageSize: 2 ** 32 - 5});
    await assert.rejects(subprocess.getOneMessage(), /exited or disconnected|failed/);
    await settle(subprocess);
  });
  assert.ok(growth < sent + ALLOCATION_BOUND, `peak RSS grew by ${growth} bytes for ${sent} bytes received`);
});

test('D26: a 500 MiB claim under the limit, cut after 4 MiB: memory follows the bytes received, not the claim', async () => {
  const sent = 4 * MiB;
  const bytes = advanced(frame(KIND.message, Buffer.alloc(sent), 500 * MiB));
  const {growth} = await peakGrowthDuring(async () => {
    const subprocess = rawPeer(bytes, 'eof');
    await assert.rejects(subprocess.getOneMessage(), /exited or disconnected|failed/);
    await settle(subprocess);
  });
  assert.ok(growth < sent + ALLOCATION_BOUND, `peak RSS grew by ${growth} bytes for ${sent} bytes received`);
});

test('truncated frame: a frame cut short by end-of-file delivers nothing, rejects the pending receive, and the parent goes on', async () => {
  // The frame announces 10 bytes of payload; 3 arrive, then the peer closes its sending side.
  const subprocess = rawPeer(advanced(frame(KIND.message, Buffer.from('93c3c2', 'hex'), 10)), 'eof');
  // The receive learns of a plain end, or better, of the cut frame itself (the next test).
  await assert.rejects(subprocess.getOneMessage(), (error) => {
    assert.match(error.message, /exited or disconnected|middle of a frame/);
    assert.match(error.code, /^ERR_IPC_(CHANNEL_CLOSED|BAD_FRAME)$/);
    return true;
  });
  const {result, error} = await settle(subprocess);
  assert.deepEqual((result ?? error).ipcOutput, []);
  const {exitCode} = await rawPeer(advanced(message('a3686921')), 'eof');
  assert.equal(exitCode, 0);
});

test(
  'truncated frame: end-of-file in the middle of a frame is reported as an IPC error, not taken for a clean end',

  async () => {
    const {ok, error} = await settle(rawPeer(advanced(frame(KIND.message, Buffer.from('93c3c2', 'hex'), 10)), 'eof'));
    assert.equal(ok, false);
    assert.match(error.message, /The IPC channel with the subprocess failed: .*(middle of a frame|truncated|incomplete)/);
  },
);

test('truncated frame: a lone byte of a header, then end-of-file, is a defined end (no message, no crash)', async () => {
  const subprocess = rawPeer(advanced(Buffer.from([0x07])), 'eof');
  await assert.rejects(subprocess.getOneMessage());
  const {result, error} = await settle(subprocess);
  assert.deepEqual((result ?? error).ipcOutput, []);
});

test('D30: a wrong protocol version, a wrong mode, a missing, malformed, 100k-deep or repeated handshake are refused', async () => {
  const cases = [
    [Buffer.concat([hello({v: 2}), message('c0')]), /speaks native-ipc protocol version 2, this side speaks version 1/],
    [Buffer.concat([hello({v: 0}), message('c0')]), /protocol version 0/],
    [Buffer.concat([hello({s: 'json'}), message('c0')]), /uses serialization 'json'/],
    [Buffer.concat([hello({s: 'v8'}), message('c0')]), /uses serialization 'v8'/],
    [message('c0'), /did not start with a native-ipc handshake/],
    [Buffer.concat([frame(KIND.hello, Buffer.from('c1c1c1', 'hex')), message('c0')]), /handshake frame is malformed/],
    [frame(KIND.hello), /handshake frame is malformed/],
    [Buffer.concat([hello(), hello(), message('c0')]), /second handshake/],
    // {v: 1, s: 'advanced', x: [[[…100k levels…]]]}: the unknown field is refused without a stack overflow.
    [
      Buffer.concat([
        frame(KIND.hello, Buffer.concat([Buffer.from('83a17601a173a8', 'hex'), Buffer.from('advanced'), Buffer.from('a178', 'hex'), Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])])),
        message('c0'),
      ]),
      /handshake frame is malformed/,
    ],
  ];
  for (const [bytes, pattern] of cases) {
    await expectRefused(bytes, pattern, 'ERR_IPC_BAD_FRAME');
  }
});

test('D30: unknown frame kinds and control frames of impossible lengths are refused', async () => {
  for (const kind of [0, 8, 42, 255]) {
    await expectRefused(advanced(frame(kind, Buffer.from('c0', 'hex'))), new RegExp(`unknown kind ${kind}`), 'ERR_IPC_BAD_FRAME');
  }
  await expectRefused(advanced(frame(KIND.ack, Buffer.alloc(3))), /kind 4 with an impossible length of 3 bytes/, 'ERR_IPC_BAD_FRAME');
  await expectRefused(advanced(frame(KIND.strict, Buffer.alloc(2))), /kind 3 with an impossible length of 2 bytes/, 'ERR_IPC_BAD_FRAME');
  await expectRefused(advanced(frame(KIND.handle)), /kind 6 with an impossible length of 0 bytes/, 'ERR_IPC_BAD_FRAME');
  await expectRefused(advanced(frame(KIND.taken, Buffer.alloc(5))), /kind 7 with an impossible length of 5 bytes/, 'ERR_IPC_BAD_FRAME');
});

test('D30: a zero-length message frame is a payload error', async () => {
  await expectRefused(advanced(frame(KIND.message)), /Invalid IPC payload: unexpected end of data/, 'ERR_IPC_BAD_PAYLOAD');
});

test('D28: garbage MessagePack is refused with ERR_IPC_BAD_PAYLOAD; huge declared lengths allocate nothing', async () => {
  const cases = [
    ['c1', /reserved byte 0xc1/],
    ['82', /map of 2 entries exceeds the remaining data/],
    ['82a161', /map of 2 entries exceeds the remaining data/],
    ['dc00', /unexpected end of data/],
    ['ddffffffff', /array of 4294967295 elements exceeds the remaining data/],
    ['dfffffffff', /map of 4294967295 entries exceeds the remaining data/],
    ['dbffffffff', /string length 4294967295 exceeds the remaining data/],
    ['c6ffffffff', /bin length 4294967295 exceeds the remaining data/],
    ['c9ffffffff05', /ext payload length 4294967295 exceeds the remaining data/],
    ['d46300', /unknown ext type 99/],
    // Shared-memory values (PROTOCOL.md §4.6): malformed, or without the descriptor that carries their bytes.
    ['d50d0000', /SHARED payload must be 17 bytes/],
    [`c7110d07${'00'.repeat(16)}`, /SHARED value of unknown form 7/],
    [`c7110dc4${'00'.repeat(8)}0000000000100000`, /SHARED value arrived without its descriptor/],
    [`c7110dc4${'00'.repeat(8)}0000000100000000`, /SHARED value of 4294967296 bytes exceeds the limit of \d+ bytes \(maxMessageSize\)/],
    ['a2fffe', /string is not valid UTF-8/],
    ['c0c0', /trailing bytes after the value/],
    ['810102', /object key is not a string/],
  ];
  for (const [hex, pattern] of cases) {
    const {growth} = await peakGrowthDuring(() =>
      expectRefused(advanced(message(hex)), new RegExp(`Invalid IPC payload: ${pattern.source}`), 'ERR_IPC_BAD_PAYLOAD'),
    );
    assert.ok(growth < ALLOCATION_BOUND, `${hex} raised the peak RSS by ${growth} bytes`);
  }
});

test('D28: values nested 100k deep are refused without a stack overflow (arrays, maps, Sets)', async () => {
  const depth = 100_000;
  const nested = (open, leaf) => Buffer.concat([Buffer.alloc(depth * open.length).fill(open), leaf]);
  for (const payload of [
    nested(Buffer.from([0x91]), Buffer.from([0xc0])),
    nested(Buffer.from('81a16b', 'hex'), Buffer.from([0xc0])),
    // A Set (ext 7) whose single element is the next Set: each level is an ext32 header announcing the
    // rest (7k − 5 bytes for a nest of k levels), then a one-element array.
    (() => {
      const bytes = Buffer.alloc(depth * 7 + 1);
      for (let i = 0; i < depth; i++) {
        bytes[i * 7] = 0xc9;
        bytes.writeUInt32BE(7 * (depth - i) - 5, i * 7 + 1);
        bytes[i * 7 + 5] = 7;
        bytes[i * 7 + 6] = 0x91;
      }
      bytes[depth * 7] = 0xc0;
      return bytes;
    })(),
  ]) {
    await expectRefused(advanced(frame(KIND.message, payload)), /Invalid IPC payload: .*(nested|stack)/, 'ERR_IPC_BAD_PAYLOAD');
  }
});

test('D28: a JSON value nested 100k deep in json mode is delivered or refused, never a crash', async () => {
  const depth = 100_000;
  const text = Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`);
  const subprocess = rawPeer(Buffer.concat([hello({s: 'json'}), frame(KIND.message, text), frame(KIND.message, Buffer.from('"next"'))]), 'eof', {
    serialization: 'json',
  });
  const {result, error} = await settle(subprocess);
  if (error === undefined) {
    assert.equal(result.ipcOutput.length, 2);
    assert.equal(result.ipcOutput[1], 'next');
    let value = result.ipcOutput[0];
    let levels = 0;
    while (Array.isArray(value) && value.length === 1) {
      value = value[0];
      levels++;
    }
    assert.equal(levels, depth - 1);
  } else {
    assert.equal(error.code, 'ERR_IPC_BAD_PAYLOAD');
  }
});

test('D25: a malformed JSON message in json mode is ERR_IPC_BAD_PAYLOAD, not an uncaught SyntaxError', async () => {
  for (const [text, pattern] of [
    ['{not json}', /bad JSON/],
    ['', /bad JSON/],
    ['"unterminated', /bad JSON/],
    [Buffer.from([0x22, 0xff, 0x22]), /string is not valid UTF-8/],
  ]) {
    await expectRefused(
      Buffer.concat([hello({s: 'json'}), frame(KIND.message, Buffer.from(text))]),
      new RegExp(`Invalid IPC payload: ${pattern.source}`),
      'ERR_IPC_BAD_PAYLOAD',
      {options: {serialization: 'json'}},
    );
  }
});

test('D29: forged control frames are ignored or refused: an unsolicited ack and a cancel from the child change nothing', async () => {
  const ack = Buffer.alloc(5);
  ack.writeUInt32LE(4242, 0);
  ack[4] = 1;
  const bytes = advanced(frame(KIND.ack, ack), frame(KIND.cancel, Buffer.from('a473746f70', 'hex')), message('a26f6b'));
  const {exitCode, ipcOutput} = await rawPeer(bytes, 'eof');
  assert.equal(exitCode, 0);
  assert.deepEqual(ipcOutput, ['ok']);
});

test('D29: a strict message from a raw peer is delivered and acknowledged', async () => {
  const body = Buffer.concat([Buffer.from([7, 0, 0, 0, 0]), Buffer.from('a3726177', 'hex')]);
  const subprocess = rawPeer(advanced(frame(KIND.strict, body)), 'hold');
  assert.equal(await subprocess.getOneMessage(), 'raw');
  subprocess.disconnect();
  const {exitCode, ipcOutput} = await subprocess;
  assert.equal(exitCode, 0);
  assert.deepEqual(ipcOutput, ['raw']);
});

test('D29: a handle frame that comes without its descriptor closes the channel with a clear error', async () => {
  const subprocess = rawPeer(advanced(frame(KIND.handle, Buffer.from('02c0', 'hex'))), 'hold');
  await assert.rejects(subprocess.getOneMessage(), /The IPC channel with the subprocess failed: a handle frame arrived without its file descriptor/);
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.deepEqual(error.ipcOutput, []);
});

test('F40: keys such as __proto__ and constructor come out as own data properties; nothing is polluted', async () => {
  // {"__proto__": {"polluted": true}, "constructor": 1}
  const payload = Buffer.from('82a95f5f70726f746f5f5f81a8706f6c6c75746564c3ab636f6e7374727563746f7201', 'hex');
  const {ipcOutput} = await rawPeer(advanced(frame(KIND.message, payload)), 'eof');
  const [value] = ipcOutput;
  assert.ok(Object.hasOwn(value, '__proto__'));
  assert.deepEqual(Object.getOwnPropertyDescriptor(value, '__proto__').value, {polluted: true});
  assert.equal(Object.getPrototypeOf(value), Object.prototype);
  assert.equal(value.constructor, 1);
  assert.equal({}.polluted, undefined);
  assert.equal(Object.prototype.polluted, undefined);
});

test('a bad frame after good ones: the good messages are delivered first, then the error', async () => {
  const subprocess = rawPeer(advanced(message('01'), message('02'), message('c1'), message('03')), 'hold');
  const {ok, error} = await settle(subprocess);
  assert.equal(ok, false);
  assert.deepEqual(error.ipcOutput, [1, 2]);
  assert.equal(error.cause.code, 'ERR_IPC_BAD_PAYLOAD');
});

// The same bytes, written by a hostile parent to a native-ipc child: the child's receive rejects clearly, its
// sends are refused, and it exits by itself with code 0.
const {createSocketpair, closeFd} = createRequire(import.meta.url)('../binding.js');

const hostileParent = async (bytes) => {
  const [parentEnd, childEnd] = createSocketpair();
  const child = spawnPlain(process.execPath, [fixturePath('r-hostile-parent-child.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit', childEnd],
    env: {...process.env, NATIVE_IPC_CHANNEL: `3:advanced:${512 * MiB}`},
  });
  closeFd(childEnd);
  const output = collect(child.stdout);
  try {
    await output.waitFor('ready\n');
    writeSync(parentEnd, bytes);
    const {code, signal} = await exited(child);
    const report = JSON.parse((await output.end).split('\n')[1]);
    return {code, signal, report};
  } finally {
    closeFd(parentEnd);
  }
};

for (const [name, bytes, pattern] of [
  ['reserved MessagePack byte', advanced(message('c1')), /Invalid IPC payload: reserved byte 0xc1/],
  ['4 GiB length prefix', advanced(frame(KIND.message, Buffer.alloc(0), 0xffff_ffff)), /above the limit/],
  ['unknown frame kind', advanced(frame(99, Buffer.alloc(1))), /unknown kind 99/],
  ['wrong protocol version', Buffer.concat([hello({v: 9}), message('c0')]), /protocol version 9/],
  ['100k-deep array', advanced(frame(KIND.message, Buffer.concat([Buffer.alloc(100_000, 0x91), Buffer.from([0xc0])]))), /nested|stack/],
]) {
  test(`a hostile parent (${name}): the child's receive rejects clearly and the child exits by itself`, async () => {
    const {code, signal, report} = await hostileParent(bytes);
    assert.equal(signal, null);
    assert.equal(code, 0);
    assert.match(report.message, /^The IPC channel with the parent process failed: /);
    assert.match(report.message, pattern);
    assert.match(report.code, /^ERR_IPC_BAD_(FRAME|PAYLOAD)$/);
    assert.equal(report.send, 'ERR_IPC_CHANNEL_CLOSED');
  });
}
