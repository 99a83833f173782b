'use strict';

// native-ipc's public API. Parent side: fork() and spawn(). Child side: sendMessage(), getOneMessage(),
// getEachMessage(), for a process started by native-ipc.

const {fork, spawn} = require('./lib/parent.js');
const {sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel} = require('./lib/child.js');

module.exports = {fork, spawn, sendMessage, getOneMessage, getEachMessage, getCancelSignal, channel};
