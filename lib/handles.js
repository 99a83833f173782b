'use strict';

// Handles passed with a message (Node's `sendHandle`): a net.Server or net.Socket travels as its file
// descriptor (SCM_RIGHTS, done in Rust) and is rebuilt as the same kind of object on the other side.

// node:net costs ~3 ms to load: it is loaded the first time a handle is sent or received, not at start-up
// (a process that sends a net.Server has loaded it already).
const loadNet = () => require('node:net');
const {describe, fail} = require('./validate.js');
const {closeFd} = require('./load.js').binding();

const HANDLE_SERVER = 1;
const HANDLE_SOCKET = 2;

/** Checks `handle` and returns how it travels; throws a TypeError for anything else. */
const describeHandle = (call, handle) => {
  const net = loadNet();
  let type;
  if (handle instanceof net.Server) {
    type = HANDLE_SERVER;
  } else if (handle instanceof net.Socket) {
    type = HANDLE_SOCKET;
  } else {
    throw fail(call, `the handle must be a net.Server or a net.Socket, not ${describe(handle)}.`);
  }
  const fd = handle._handle?.fd;
  if (!Number.isInteger(fd) || fd < 0) {
    throw fail(
      call,
      type === HANDLE_SERVER
        ? 'the net.Server must be listening before it can be sent.'
        : 'the net.Socket must be connected before it can be sent.',
    );
  }
  return {type, fd};
};

/** Rebuilds a received handle (`{type, fd}`); the descriptor is owned by the returned object. */
const reviveHandle = ({type, fd}) => {
  const net = loadNet();
  if (type === HANDLE_SERVER) {
    const server = net.createServer();
    server.listen({fd});
    return server;
  }
  return new net.Socket({fd, readable: true, writable: true});
};

/** Closes a received handle nobody took. */
const dropHandle = ({fd}) => {
  closeFd(fd);
};

module.exports = {describeHandle, reviveHandle, dropHandle, HANDLE_SERVER, HANDLE_SOCKET};
