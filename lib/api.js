'use strict';

// native-ipc's public API, as index.js and index.mjs export it. Parent side: fork() and spawn(). Child side:
// sendMessage(), getOneMessage(), getEachMessage(), for a process started by native-ipc.

const {load} = require('./load.js');
const {sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel} = load('child.js');

// The parent side is loaded on the first fork()/spawn(): a child that imports this package to talk to its
// parent does not pay for it at start-up (~8-10 ms, with node:child_process).
let parent;
const loadParent = () => (parent ??= load('parent.js'));
const fork = (...args) => loadParent().fork(...args);
const spawn = (...args) => loadParent().spawn(...args);

module.exports = {fork, spawn, sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel};
