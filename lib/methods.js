'use strict';

// execa's three IPC methods, the same on both sides: `prefix` is 'subprocess.' in the parent and '' in the
// child; `getChannel(name)` returns the channel or throws the "not enabled" error for that method.

const errors = require('./errors.js');
const {validateSendOptions, validateGetOneOptions, validateGetEachOptions} = require('./validate.js');

/**
 * @param {{prefix: string, getChannel: (name: string) => import('./channel.js').Channel,
 *   onLoopEnd?: (channel: import('./channel.js').Channel) => Promise<void>}} side
 */
const ipcMethods = ({prefix, getChannel, onLoopEnd}) => {
  const open = (name, usable) => {
    const channel = getChannel(name);
    if (!usable(channel)) {
      throw errors.notConnected(prefix, channel.other, name);
    }
    return channel;
  };
  const connected = (channel) => channel.connected;
  const receivable = (channel) => channel.receivable;
  // Built once: a template literal per call would allocate a string on every send.
  const sendName = `${prefix}sendMessage`;
  const getOneName = `${prefix}getOneMessage`;
  const getEachName = `${prefix}getEachMessage`;

  return {
    sendMessage(message, options) {
      const {strict} = validateSendOptions(sendName, options);
      return open('sendMessage', connected).send(message, strict);
    },
    getOneMessage(options) {
      const {filter, reference} = validateGetOneOptions(getOneName, options);
      return open('getOneMessage', receivable).getOne(filter, reference);
    },
    getEachMessage(options) {
      const {reference} = validateGetEachOptions(getEachName, options);
      const channel = open('getEachMessage', receivable);
      // iterator.js is loaded at the first getEachMessage(): a child that sends its first message before it
      // listens has that message on its way sooner.
      const {MessageIterator} = require('./iterator.js');
      return new MessageIterator(channel, reference, onLoopEnd === undefined ? undefined : () => onLoopEnd(channel));
    },
  };
};

module.exports = {ipcMethods};
