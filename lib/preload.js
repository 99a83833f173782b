'use strict';

// Loaded with `--require` into every child that native-ipc's fork() starts, before the user's script: the
// channel end is adopted at once, so the descriptor and the environment variable never leak into a
// grandchild, even when the script spawns one before it first uses the channel.
require('./load.js').load('child.js').adopt();
