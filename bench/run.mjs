#!/usr/bin/env node
// native-ipc benchmark: the same scenarios over native-ipc, Node's own
// child_process.fork IPC (json and advanced), Bun.spawn ipc when a bun binary
// is around, and a raw Rust floor. Writes bench/results.{json,md,svg}.
//
//   node bench/run.mjs [--reps N] [--only id,id] [--scenarios 1,2,4a|p2c,...] [--quick]
//
// Implementation ids: native-advanced native-json node-json node-advanced
// bun-json bun-advanced node-stream floor (floor also gives floor-spin). --quick uses 1/10 of the
// message counts and smaller payloads (for checking the harness, not for figures).
import {spawn, spawnSync} from 'node:child_process';
import {existsSync, writeFileSync, accessSync, constants} from 'node:fs';
import {cpus, release, loadavg} from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {SCENARIOS, DEFAULTS, MiB, RESULT_MARK, SAMPLE_MARK, READY_MARK, median} from './lib/common.mjs';
import {consoleTable, markdownTable, svgChart, formatValue} from './lib/report.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(benchDir);
const rel = p => path.relative(process.cwd(), p) || '.';

// ------------------------------------------------------------ options ------

function parseArgs(argv) {
	const opts = {reps: 3, only: null, scenarios: null, quick: false};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		const value = () => {
			const v = argv[++i];
			if (v === undefined) throw new Error(`${a} needs a value`);
			return v;
		};
		if (a === '--reps') opts.reps = Math.max(1, Number.parseInt(value(), 10) || 3);
		else if (a === '--only') opts.only = value().split(',');
		else if (a === '--scenarios') opts.scenarios = value().split(',');
		else if (a === '--quick') opts.quick = true;
		else if (a === '--help' || a === '-h') {
			console.log('usage: node bench/run.mjs [--reps N] [--only id,id] [--scenarios 1,2,4a|p2c,...] [--quick]');
			process.exit(0);
		} else throw new Error(`unknown argument ${a}`);
	}
	return opts;
}

const opts = parseArgs(process.argv.slice(2));
const sizes = {
	messages: opts.quick ? DEFAULTS.messages / 10 : DEFAULTS.messages,
	roundTrips: opts.quick ? DEFAULTS.roundTrips / 10 : DEFAULTS.roundTrips,
	echoBytes: opts.quick ? DEFAULTS.echoBytes / 4 : DEFAULTS.echoBytes,
	rssBytes: opts.quick ? DEFAULTS.rssBytes / 8 : DEFAULTS.rssBytes,
};
const scenarios = SCENARIOS.filter(s => !opts.scenarios || opts.scenarios.includes(s.id) || opts.scenarios.includes(s.n));
const wanted = id => !opts.only || opts.only.includes(id);
// A fork varies by ±20% from one sample to the next here: scenario 5 takes ten times the samples, so that its
// median can tell apart the 10% its target is about.
const forkReps = opts.reps * 10;
// Scenarios 1 and 2 start a fresh child for every sample, and a fresh native-ipc child's speed depends on when
// V8 has compiled its decoder while two busy cores also run the parent: its samples spread over almost 2x within
// one run (2.3M-4.2M messages a second), where Node's own stay within ~25%. A median of five such samples then
// moves by ~10% from run to run, as much as the target is about: they take three times the samples.
const coldReps = opts.reps * 3;
const JSON_RSS_TIMEOUT_S = 5; // JSON turns a 256 MiB Buffer into an array of numbers: it fails or crawls
const DRIVER_TIMEOUT_S = 120;

// ------------------------------------------------------------ discovery ----

function findBun() {
	const candidates = [
		...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map(d => path.join(d, 'bun')),
		path.join(root, 'node_modules', '.bin', 'bun'),
	];
	for (const file of candidates) {
		try {
			accessSync(file, constants.X_OK);
		} catch {
			continue;
		}
		const r = spawnSync(file, ['--version'], {encoding: 'utf8'});
		if (r.status === 0) return {path: file, version: r.stdout.trim()};
	}
	return null;
}

function checkNativeIpc() {
	const index = path.join(root, 'index.js');
	if (!existsSync(index)) return `${rel(index)} does not exist (build the addon first: npm run build)`;
	const r = spawnSync(
		process.execPath,
		['-e', "const m = require(process.argv[1]); if (typeof m.fork !== 'function') throw new Error('index.js exports no fork()')", index],
		{encoding: 'utf8'},
	);
	if (r.status !== 0) {
		const lines = r.stderr.split('\n').map(l => l.trim());
		return lines.find(l => /^([A-Z]\w*)?Error\b/.test(l)) ?? lines.find(l => /Error/.test(l)) ?? lines.find(Boolean) ?? 'failed to load';
	}
	return null;
}

function buildFloor() {
	const manifest = path.join(benchDir, 'floor', 'Cargo.toml');
	const targetDir = path.join(benchDir, 'floor', 'target');
	const r = spawnSync('cargo', ['build', '--release', '--quiet', '--manifest-path', manifest, '--target-dir', targetDir], {
		cwd: root,
		encoding: 'utf8',
	});
	if (r.error) return {error: `cargo not available (${r.error.code ?? r.error.message})`};
	if (r.status !== 0) return {error: `cargo build failed:\n${r.stderr}`};
	return {binary: path.join(targetDir, 'release', 'native-ipc-bench-floor')};
}

// ------------------------------------------------------------ running ------

// Variables that make every Node process slower to start, whatever its IPC, are left out of the drivers'
// (and so their children's) environment. With NODE_EXTRA_CA_CERTS set, as on this project's machine, Node
// parses every certificate of that file at start-up (~100 ms here: two thirds of a fork → first message),
// which would hide the start-up cost scenario 5 compares.
const START_UP_TAXES = ['NODE_EXTRA_CA_CERTS'];
const removedEnv = START_UP_TAXES.filter(name => process.env[name] !== undefined);
const driverEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !START_UP_TAXES.includes(name)));
const loadAtStart = loadavg();

/**
 * Starts one driver process (its own process group). `result` resolves to its parsed result. A stepped driver
 * (job.stepped, see runJob) waits for a line on its stdin before each sample: `step()` asks for the next one
 * and resolves once the driver reported it, or ended; `ready` resolves once it has loaded (or ended); `finish()`
 * lets it wind down. The time limit applies to the whole run, or to each step and the wind-down of a stepped
 * driver.
 */
function startDriver(command, args, timeoutSeconds, stepped = false) {
	const child = spawn(command, args, {cwd: root, env: driverEnv, stdio: [stepped ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true});
	let stdout = '';
	let stderr = '';
	let unread = '';
	let sampleTaken;
	let reported = false;
	let markReady;
	const ready = new Promise(resolve => (markReady = resolve));
	child.stdout.setEncoding('utf8').on('data', d => {
		stdout += d;
		if (!stepped) return;
		unread += d;
		let end;
		while ((end = unread.indexOf('\n')) !== -1) {
			const line = unread.slice(0, end);
			unread = unread.slice(end + 1);
			if (line === READY_MARK) markReady();
			// The result line comes last: a driver that reported it (an error, say) takes no more samples, even if
			// something still keeps its process alive.
			const done = line.startsWith(RESULT_MARK);
			if (done) reported = true;
			if ((done || line === SAMPLE_MARK) && sampleTaken) {
				const resolve = sampleTaken;
				sampleTaken = undefined;
				resolve(!done);
			}
		}
	});
	child.stderr.setEncoding('utf8').on('data', d => (stderr += d));
	// A driver that already ended leaves its stdin closed: nothing to write to, nothing to report.
	child.stdin?.on('error', () => {});
	let timedOut = false;
	let timer;
	const arm = (seconds = timeoutSeconds) => {
		clearTimeout(timer);
		timer = setTimeout(() => {
			timedOut = true;
			try {
				process.kill(-child.pid, 'SIGKILL');
			} catch {}
		}, seconds * 1000);
	};
	arm();
	let ended = false;
	const result = new Promise(resolve => {
		child.on('error', error => {
			ended = true;
			markReady();
			clearTimeout(timer);
			sampleTaken?.(false);
			resolve({samples: [], error: `could not start ${command}: ${error.message}`});
		});
		child.on('close', (code, signal) => {
			ended = true;
			markReady();
			clearTimeout(timer);
			sampleTaken?.(false);
			const line = stdout.split('\n').find(l => l.startsWith(RESULT_MARK));
			if (line) {
				const result = JSON.parse(line.slice(RESULT_MARK.length));
				if (result.error && stderr.trim()) result.stderr = stderr.trim().slice(-2000);
				return resolve(result);
			}
			// leftover children of a killed driver
			try {
				process.kill(-child.pid, 'SIGKILL');
			} catch {}
			let error;
			if (timedOut) error = `did not finish within ${timeoutSeconds} s`;
			else {
				const lines = stderr.split('\n').map(l => l.trim());
				const hint =
					lines.find(l => /FATAL ERROR|^([A-Z]\w*)?Error\b|panicked/.test(l)) ?? lines.find(l => /Error/.test(l)) ?? lines.filter(Boolean).at(-1);
				error = `driver ended with ${signal ? `signal ${signal}` : `exit code ${code}`}${hint ? `: ${hint.slice(0, 300)}` : ''}`;
			}
			resolve({samples: [], error});
		});
	});
	const step = () =>
		new Promise(resolve => {
			if (ended || reported) return resolve(false);
			sampleTaken = resolve;
			arm();
			child.stdin.write('\n');
		});
	const finish = () => {
		// One that already reported has nothing left to do: a few seconds to exit, then it is stopped.
		if (!ended) arm(reported ? 5 : timeoutSeconds);
		child.stdin?.end();
	};
	return {result, ready, step, finish};
}

/** Runs one driver process from start to end and returns its parsed result. */
const runDriver = (command, args, timeoutSeconds) => startDriver(command, args, timeoutSeconds).result;

const implementations = [];
const bun = findBun();

const nativeProblem = wanted('native-advanced') || wanted('native-json') ? checkNativeIpc() : null;
for (const serialization of ['advanced', 'json']) {
	implementations.push({
		id: `native-${serialization}`,
		label: `native-ipc (${serialization})`,
		command: process.execPath,
		driver: path.join(benchDir, 'drivers', 'native-ipc.mjs'),
		serialization,
		skipped: !wanted(`native-${serialization}`) ? 'not selected' : nativeProblem,
	});
}
for (const serialization of ['json', 'advanced']) {
	implementations.push({
		id: `node-${serialization}`,
		label: `Node fork (${serialization})`,
		command: process.execPath,
		driver: path.join(benchDir, 'drivers', 'node-fork.mjs'),
		serialization,
		skipped: !wanted(`node-${serialization}`) ? 'not selected' : null,
	});
}
for (const serialization of ['json', 'advanced']) {
	implementations.push({
		id: `bun-${serialization}`,
		label: `Bun.spawn ipc (${serialization})`,
		command: bun?.path,
		driver: path.join(benchDir, 'drivers', 'bun-spawn.mjs'),
		serialization,
		skipped: !wanted(`bun-${serialization}`) ? 'not selected' : bun ? null : 'not installed',
	});
}
// Node's own floor for round trips: raw bytes echoed over the child's stdio socketpair (scenario 3 only).
implementations.push({
	id: 'node-stream',
	label: 'Node raw stream floor',
	command: process.execPath,
	driver: path.join(benchDir, 'drivers', 'node-stream.mjs'),
	only: ['pingpong'],
	skipped: wanted('node-stream') ? null : 'not selected',
});
const floor = {id: 'floor', label: 'raw floor (Rust)', skipped: wanted('floor') ? null : 'not selected'};
implementations.push(floor);
// The same program's ping-pong with both processes polling the socket instead of sleeping: the floor for waiting
// awake, which native-ipc does after a write (see src/spin.rs).
const floorSpin = {
	id: 'floor-spin',
	label: 'raw floor, busy-polling (Rust)',
	only: ['pingpong'],
	get skipped() {
		return floor.skipped;
	},
};
implementations.push(floorSpin);
for (const impl of implementations) impl.scenarios = {};

const started = process.hrtime.bigint();
console.log(`native-ipc benchmark — Node ${process.version}, ${cpus().length} vCPU, reps ${opts.reps}${opts.quick ? ', QUICK sizes' : ''}`);
if (!bun) console.log('bun: not installed, skipped');
else console.log(`bun: ${bun.version} (${rel(bun.path)})`);
if (nativeProblem) console.log(`native-ipc: not usable, skipped — ${nativeProblem}`);

// The raw floor: one process measures its scenarios (and the busy-polling ping-pong).
if (!floor.skipped) {
	process.stdout.write('floor: building bench/floor (cargo build --release) … ');
	const built = buildFloor();
	if (built.error) {
		console.log('failed, skipped');
		console.log(built.error);
		floor.skipped = built.error.split('\n')[0];
	} else {
		console.log('ok');
		const r = spawnSync(
			built.binary,
			['--reps', String(opts.reps), '--messages', String(sizes.messages), '--round-trips', String(sizes.roundTrips), '--echo-mib', String(Math.max(1, sizes.echoBytes / MiB))],
			{encoding: 'utf8', timeout: DRIVER_TIMEOUT_S * 1000},
		);
		if (r.status !== 0) {
			floor.skipped = `floor run failed: ${(r.stderr || String(r.error)).trim().split('\n')[0]}`;
			console.log(floor.skipped);
		} else {
			const out = JSON.parse(r.stdout);
			const ids = {s1: [floor, 'p2c'], s3: [floor, 'pingpong'], s3spin: [floorSpin, 'pingpong'], s4b: [floor, 'echoBuffer']};
			for (const [key, [impl, id]] of Object.entries(ids)) {
				impl.scenarios[id] = {median: out[key].median, samples: out[key].samples};
				const s = SCENARIOS.find(x => x.id === id);
				console.log(`  [${s.n} ${s.title}] ${impl.label}: ${formatValue(s, out[key].median)} ${s.unit}`);
			}
		}
	}
}

// Every scenario takes its samples in rounds: one sample of each implementation per round, so that the ratios of
// one run compare samples taken within seconds of each other. The order turns from round to round: forward and
// backward, starting one implementation further every two rounds, so that each takes every place about as often.
// (With forward and backward alone, the implementations in the middle always ran between two others: a fork
// there was 6-10% slower than at either end, measured with two copies of the same package.)
const roundOrder = (active, round) => {
	const shift = Math.floor(round / 2) % active.length;
	const turned = [...active.slice(shift), ...active.slice(0, shift)];
	return round % 2 === 0 ? turned : turned.reverse();
};
for (const scenario of scenarios) {
	console.log(`${scenario.n}. ${scenario.title} (${scenario.unit})`);
	const active = implementations.filter(impl => !(impl.skipped || impl === floor || impl === floorSpin || (impl.only && !impl.only.includes(scenario.id))));
	const reps = scenario.id === 'forkFirst' ? forkReps : scenario.id === 'p2c' || scenario.id === 'c2p' ? coldReps : opts.reps;
	const job = impl => ({scenario: scenario.id, serialization: impl.serialization, reps, ...sizes});
	const runs = new Map(active.map(impl => [impl, {seconds: 0, result: undefined}]));
	const timed = async (impl, work) => {
		const t0 = process.hrtime.bigint();
		const out = await work();
		runs.get(impl).seconds += Number(process.hrtime.bigint() - t0) / 1e9;
		return out;
	};
	if (scenario.id === 'peakRss') {
		// VmHWM only grows: every sample needs a fresh parent process. JSON modes run once, with a short limit.
		for (const impl of active) runs.get(impl).result = {samples: [], details: []};
		for (let round = 0; round < opts.reps; round++) {
			for (const impl of roundOrder(active, round)) {
				const result = runs.get(impl).result;
				const isJson = impl.serialization === 'json';
				if (result.error || (isJson && round > 0)) continue;
				const one = await timed(impl, () =>
					runDriver(impl.command, [impl.driver, JSON.stringify({...job(impl), reps: 1})], isJson ? JSON_RSS_TIMEOUT_S : DRIVER_TIMEOUT_S),
				);
				result.samples.push(...one.samples);
				result.details.push(...(one.details ?? []));
				if (one.error) result.error = one.error;
			}
		}
	} else {
		// One driver process per implementation serves all its samples, one per step.
		const drivers = new Map(
			active.map(impl => [impl, startDriver(impl.command, [impl.driver, JSON.stringify({...job(impl), stepped: true})], DRIVER_TIMEOUT_S, true)]),
		);
		// No sample runs while a driver is still starting (see runJob).
		await Promise.all([...drivers.values()].map(driver => driver.ready));
		for (let round = 0; round < reps; round++) {
			for (const impl of roundOrder(active, round)) {
				await timed(impl, () => drivers.get(impl).step());
			}
		}
		for (const impl of active) {
			const driver = drivers.get(impl);
			driver.finish();
			runs.get(impl).result = await timed(impl, () => driver.result);
		}
	}
	for (const impl of active) {
		const {result, seconds} = runs.get(impl);
		const entry = {median: median(result.samples), samples: result.samples};
		if (result.error) entry.error = `${impl.label}, scenario ${scenario.n}: ${result.error}`;
		if (scenario.id === 'peakRss' && result.details?.length) {
			entry.parent = median(result.details.map(d => d.parent));
			entry.child = median(result.details.map(d => d.child));
			entry.details = result.details;
		}
		impl.scenarios[scenario.id] = entry;
		const shown = entry.median === null ? 'failed' : `${formatValue(scenario, entry.median)} ${scenario.unit}`;
		console.log(`  ${impl.label}: ${shown}  [${seconds.toFixed(1)} s]${result.error ? `  (${result.error})` : ''}`);
		if (result.stderr) console.log(result.stderr.split('\n').slice(-5).map(l => `    | ${l}`).join('\n'));
	}
}

// ------------------------------------------------------------ ratios -------

const byId = Object.fromEntries(implementations.map(i => [i.id, i]));
function ratio(a, b) {
	const out = {};
	for (const s of scenarios) {
		const x = byId[a]?.scenarios[s.id]?.median;
		const y = byId[b]?.scenarios[s.id]?.median;
		if (typeof x === 'number' && typeof y === 'number' && y > 0) out[s.id] = x / y;
	}
	return out;
}
const ratios = [
	{label: 'native-ipc ÷ Node json', of: 'native-advanced', to: 'node-json'},
	{label: 'native-ipc ÷ Node advanced', of: 'native-advanced', to: 'node-advanced'},
	{label: 'native-ipc ÷ raw floor', of: 'native-advanced', to: 'floor'},
	{label: 'native-ipc ÷ busy-polling floor', of: 'native-advanced', to: 'floor-spin'},
	{label: 'native-ipc ÷ Node raw stream floor', of: 'native-advanced', to: 'node-stream'},
	{label: 'native-ipc json ÷ Node json', of: 'native-json', to: 'node-json'},
	{label: 'native-ipc ÷ Bun json', of: 'native-advanced', to: 'bun-json'},
	{label: 'native-ipc json ÷ Bun json', of: 'native-json', to: 'bun-json'},
	{label: 'native-ipc ÷ Bun advanced', of: 'native-advanced', to: 'bun-advanced'},
]
	.map(r => ({...r, values: ratio(r.of, r.to)}))
	.filter(r => Object.keys(r.values).length > 0);

// ------------------------------------------------------------ output -------

const results = {
	meta: {
		date: new Date().toISOString(),
		node: process.version,
		bun: bun?.version ?? null,
		cpus: cpus().length,
		cpuModel: cpus()[0]?.model?.trim() ?? 'unknown CPU',
		kernel: release(),
		loadavg: loadAtStart,
		removedEnv,
		reps: opts.reps,
		forkReps,
		coldReps,
		rssReps: opts.reps,
		jsonRssTimeoutSeconds: JSON_RSS_TIMEOUT_S,
		quick: opts.quick,
		messages: sizes.messages,
		roundTrips: sizes.roundTrips,
		echoMiB: sizes.echoBytes / MiB,
		rssMiB: sizes.rssBytes / MiB,
		definitions: {
			p2c: 'parent sends N small messages; timed until the child reports the count',
			c2p: 'parent asks the child to send N small messages; timed until the N-th arrives',
			p2cWarm: 'as p2c, on one child that already took an untimed round of N (the steady state of a long-lived worker)',
			c2pWarm: 'as c2p, on one child that already took an untimed round of N',
			pingpong: 'one small message in flight, echoed by the child; mean time per round trip',
			echoString: 'string payload sent and echoed back; 2 × payload bytes ÷ time',
			echoBuffer: 'Buffer payload sent and echoed back; 2 × payload bytes ÷ time',
			forkFirst: 'fork() to the first message (sent by the child at start) received; after one untimed warm-up fork',
			peakRss: 'VmHWM of parent + child after echoing the Buffer, ÷ payload size (fresh parent per sample)',
		},
		seconds: Number(process.hrtime.bigint() - started) / 1e9,
	},
	scenarios: scenarios,
	implementations: implementations.map(({id, label, serialization, skipped, scenarios: sc}) => ({
		id,
		label,
		serialization: serialization ?? null,
		skipped: skipped || null,
		scenarios: sc,
	})),
	ratios: ratios.map(({label, of, to, values}) => ({label, of, to, values})),
};

console.log('');
console.log(consoleTable({...results, scenarios}));
writeFileSync(path.join(benchDir, 'results.json'), JSON.stringify(results, null, '\t') + '\n');
writeFileSync(path.join(benchDir, 'results.md'), markdownTable(results));
writeFileSync(path.join(benchDir, 'results.svg'), svgChart(results));
console.log('');
console.log(`wrote ${rel(path.join(benchDir, 'results.json'))}, results.md, results.svg in ${results.meta.seconds.toFixed(0)} s`);
