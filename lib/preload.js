'use strict';

// Loaded with `--require` into every child that native-ipc's fork() starts, before the user's script: the
// channel end is adopted at once, so the descriptor and the environment variable never leak into a
// grandchild, even when the script spawns one before it first uses the channel.
const path = require('node:path');
const {load} = require('./load.js');

load('child.js').adopt();

// The public API, for index.mjs (see there): keyed by that file's path, so that another copy of native-ipc in
// this process loads its own. Not enumerable, and it holds only what require('native-ipc') returns anyway.
const KEY = Symbol.for('native-ipc.preloaded');
if (!Object.hasOwn(globalThis, KEY)) {
  Object.defineProperty(globalThis, KEY, {value: new Map()});
}
globalThis[KEY].set(path.join(__dirname, '..', 'index.mjs'), load('api.js'));
