// What goes into the child first (ipcInput), what comes out of it (ipcOutput, buffer, maxBuffer, the error
// message, verbose printing), and values that look like internal messages (execa R26, R39–R47, R51–R52,
// R62–R63).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import childProcess, {execFile} from 'node:child_process';
import {fileURLToPath} from 'node:url';
import {inspect, promisify, stripVTControlCharacters} from 'node:util';
import {execaNode} from 'execa';
import {fork, spawn, fixture, settle} from './helpers.mjs';
import {shapes} from './fixtures/x-shapes-list.mjs';

const execFileAsync = promisify(execFile);
// A lost message would leave a process waiting: the test then fails instead of blocking the suite.
const LIMIT = {timeout: 30_000};

test('R26, R37: ipcInput is the first message the child gets, before a message sent right after fork()', LIMIT, async () => {
  const subprocess = fork(fixture('x-input-late.mjs'), ['0'], {ipcInput: {input: true}});
  await subprocess.sendMessage('second');
  const result = await subprocess;
  assert.deepEqual(result.ipcOutput, [{first: {input: true}, second: 'second'}]);
});

test('R26: ipcInput and an early message still arrive when the child waits 1 s before its first receive', LIMIT, async () => {
  const subprocess = fork(fixture('x-input-late.mjs'), ['1000'], {ipcInput: 'input'});
  await subprocess.sendMessage('second');
  const result = await subprocess;
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.ipcOutput, [{first: 'input', second: 'second'}]);
});

test('R41: an ipcInput the child never reads does not fail the result', async () => {
  const result = await fork(fixture('idle.mjs'), [], {ipcInput: 'unused'});
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.ipcOutput, ['ready']);
});

/** `start()` must throw before anything is spawned; a valid fork() afterwards proves the spy counts spawns. */
const assertRefusedBeforeSpawn = async (t, start, expected) => {
  const spy = t.mock.method(childProcess, 'spawn');
  assert.throws(start, expected);
  assert.equal(spy.mock.callCount(), 0, 'nothing may be spawned for an invalid ipcInput');
  const result = await fork(fixture('idle.mjs'), [], {ipcInput: 'valid'});
  assert.equal(spy.mock.callCount(), 1);
  assert.equal(result.exitCode, 0);
};

test('R39: an ipcInput a structured clone cannot carry (a function) is a synchronous TypeError naming the option', async (t) => {
  await assertRefusedBeforeSpawn(t, () => fork(fixture('idle.mjs'), [], {ipcInput: {run() {}}}), (error) => {
    assert.equal(error.name, 'TypeError');
    assert.match(error.message, /`ipcInput` option is not serializable with a structured clone/);
    assert.ok(error.cause instanceof Error);
    return true;
  });
});

test("R39: an ipcInput JSON cannot carry (a BigInt) with serialization: 'json' is a synchronous TypeError naming the option", async (t) => {
  await assertRefusedBeforeSpawn(
    t,
    () => fork(fixture('idle.mjs'), [], {serialization: 'json', ipcInput: {count: 1n}}),
    (error) => {
      assert.equal(error.name, 'TypeError');
      assert.match(error.message, /`ipcInput` option is not serializable with JSON/);
      assert.ok(error.cause instanceof Error);
      return true;
    },
  );
});

test('R39: ipcInput without a channel is a synchronous TypeError naming both options', async (t) => {
  const expected = {name: 'TypeError', message: /the `ipcInput` option cannot be set unless the `ipc` option is `true`\./};
  await assertRefusedBeforeSpawn(t, () => fork(fixture('idle.mjs'), [], {ipc: false, ipcInput: 'x'}), expected);
  await assertRefusedBeforeSpawn(
    t,
    () => spawn(process.execPath, [fileURLToPath(fixture('idle.mjs'))], {ipcInput: 'x'}),
    expected,
  );
});

test('R43: buffer: false gives ipcOutput [] while the IPC methods still work', LIMIT, async () => {
  const subprocess = fork(fixture('pending-receive.mjs'), [], {buffer: false});
  assert.equal(await subprocess.getOneMessage(), 'ready');
  const [reply] = await Promise.all([subprocess.getOneMessage(), subprocess.sendMessage('go')]);
  assert.deepEqual(reply, {got: 'go'});
  const result = await subprocess;
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.ipcOutput, []);
});

test('R44: past maxBuffer the result fails with isMaxBuffer and exactly maxBuffer messages', async () => {
  const {ok, error} = await settle(fork(fixture('send-n.mjs'), ['5'], {maxBuffer: 2}));
  assert.equal(ok, false);
  assert.equal(error.isMaxBuffer, true);
  assert.deepEqual(
    error.ipcOutput.map(({i}) => i),
    [0, 1],
  );
  assert.match(error.shortMessage, /^Command's IPC output was larger than 2 messages: \S*send-n\.mjs 5\nmaxBuffer exceeded$/);
  assert.ok(error.message.startsWith(error.shortMessage));
  assert.ok(error.message.endsWith(`\n\n${error.ipcOutput.map((message) => inspect(message)).join('\n')}`));
});

test('R43, R44: maxBuffer is ignored with buffer: false', async () => {
  const result = await fork(fixture('send-n.mjs'), ['5'], {maxBuffer: 2, buffer: false});
  assert.equal(result.exitCode, 0);
  assert.equal(result.isMaxBuffer, false);
  assert.deepEqual(result.ipcOutput, []);
});

test('R45, R47: error.ipcOutput, and the messages at the end of error.message (strings as-is, objects inspected, escaped)', async () => {
  const {ok, error} = await settle(fork(fixture('x-output-fail.mjs')));
  assert.equal(ok, false);
  assert.equal(error.exitCode, 2);
  const long = {long: 'x'.repeat(60), other: 'y'.repeat(30)};
  assert.deepEqual(error.ipcOutput, [
    'plain string',
    {a: 1, nested: {b: [1, 2]}},
    'with \u0000 nul and \t tab',
    'two\nlines\n',
    long,
  ]);
  assert.match(error.shortMessage, /^Command failed with exit code 2: \S*x-output-fail\.mjs$/);
  assert.ok(inspect(long).includes('\n'), 'the long object is inspected over several lines');
  // One line per message; a string keeps its own final newline (here an empty line), as with execa.
  const expectedEnd = [
    'plain string',
    inspect({a: 1, nested: {b: [1, 2]}}),
    'with \\u0000 nul and \\t tab',
    'two\nlines\n',
    inspect(long),
  ].join('\n');
  assert.equal(error.message, `${error.shortMessage}\n\n${expectedEnd}`);
});

test("R47: the messages part of error.message is the same as execa's for the same child (escapes, inspect, newlines)", async () => {
  const script = fixture('x-output-escapes.mjs');
  const [native, viaExeca] = await Promise.all([settle(fork(script)), settle(execaNode(script, [], {ipc: true}))]);
  assert.equal(native.ok, false);
  assert.equal(viaExeca.ok, false);
  assert.equal(native.error.exitCode, 1);
  assert.deepEqual(native.error.ipcOutput, viaExeca.error.ipcOutput);
  const messagesPart = ({message, shortMessage}) => {
    assert.ok(message.startsWith(`${shortMessage}\n\n`));
    return message.slice(shortMessage.length + 2);
  };
  const expected = messagesPart(viaExeca.error);
  // Not a vacuous comparison: execa did escape something and kept the letters.
  assert.match(expected, /\\u0000/);
  assert.match(expected, /letters kept: é 日本 😀/);
  assert.equal(messagesPart(native.error), expected);
});

test('R47: with buffer: false the error message has no messages part', async () => {
  const {ok, error} = await settle(fork(fixture('x-output-fail.mjs'), [], {buffer: false}));
  assert.equal(ok, false);
  assert.equal(error.exitCode, 2);
  assert.deepEqual(error.ipcOutput, []);
  assert.equal(error.message, error.shortMessage);
});

const LINE = /^\[(\d\d):(\d\d):(\d\d)\.(\d{3})\] \[(\d+)\] \* (.*)$/;

/** Runs x-verbose-parent.mjs as a subprocess; returns the child's pid and the parent's stderr lines. */
const runVerboseParent = async (...args) => {
  const {stdout, stderr} = await execFileAsync(process.execPath, [fileURLToPath(fixture('x-verbose-parent.mjs')), ...args]);
  const lines = stderr === '' ? [] : stderr.replace(/\n$/, '').split('\n');
  return {...JSON.parse(stdout), lines};
};

const EXPECTED_VERBOSE = [
  'hello from the child',
  inspect({nested: {list: [1, 2]}, text: 'a b'}),
  'first line',
  'second line',
  'control \\u0001 and\\ttab',
  'red text',
  'cr\\r, no-break\\u00a0space, zero\\u200bwidth',
  inspect({got: 'parent message, not printed'}),
];

for (const buffer of ['true', 'false']) {
  test(`R51, R52: verbose: 'full' prints each message from the child on stderr as [HH:MM:SS.mmm] [pid] * line (buffer: ${buffer})`, async () => {
    const {pid, exitCode, count, lines} = await runVerboseParent('full', buffer);
    assert.equal(exitCode, 0);
    assert.equal(count, buffer === 'true' ? 7 : 0);
    const texts = lines.map((line) => {
      const match = LINE.exec(line);
      assert.ok(match, `not a verbose line: ${JSON.stringify(line)}`);
      const [, hours, minutes, seconds, , linePid, text] = match;
      assert.ok(Number(hours) < 24 && Number(minutes) < 60 && Number(seconds) < 60, line);
      assert.equal(Number(linePid), pid);
      return text;
    });
    // Only what the child sent, in order; the parent's own message to the child is not printed.
    assert.deepEqual(texts, EXPECTED_VERBOSE);
  });
}

test("R52: verbose: 'full' prints the same text for each message as execa does", async () => {
  const [native, viaExeca] = await Promise.all([runVerboseParent('full', 'true'), runVerboseParent('full', 'true', 'execa')]);
  // execa also prints the command and its completion, in color: keep its IPC lines, without the colors.
  const ipcTexts = (lines) =>
    lines
      .map((line) => stripVTControlCharacters(line))
      .filter((line) => LINE.test(line))
      .map((line) => LINE.exec(line)[6]);
  const expected = ipcTexts(viaExeca.lines);
  assert.equal(expected.length, EXPECTED_VERBOSE.length);
  assert.deepEqual(ipcTexts(native.lines), expected);
});

test("R51: without verbose: 'full' nothing is printed", async () => {
  for (const verbose of ['none', 'short']) {
    const {exitCode, count, lines} = await runVerboseParent(verbose, 'true');
    assert.equal(exitCode, 0);
    assert.equal(count, 7);
    assert.deepEqual(lines, []);
  }
});

test("R62, R63 (no reserved shapes): execa's and Node's internal message shapes travel as sent, both ways, strict or not", LIMIT, async () => {
  const subprocess = fork(fixture('x-shapes.mjs'));
  for (const shape of shapes()) {
    await subprocess.sendMessage(shape);
  }
  await subprocess.sendMessage(shapes()[0], {strict: true});
  await subprocess.sendMessage('end');
  const result = await subprocess;
  assert.equal(result.exitCode, 0);
  assert.deepEqual(result.ipcOutput, [
    ...shapes(),
    shapes()[1],
    {received: [...shapes(), shapes()[0]], aborted: false},
  ]);
});
