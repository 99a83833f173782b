'use strict';

// The object `getEachMessage()` returns: a hand-written async iterator (cheaper per message than an async
// generator) that buffers every message while the loop body runs and ends after the channel ended.

class MessageIterator {
  /**
   * @param {import('./channel.js').Channel} channel
   * @param {boolean} reference keep the event loop alive until the loop ends
   * @param {(() => Promise<void>) | undefined} onFinish awaited when the loop ends, however it ends
   */
  constructor(channel, reference, onFinish) {
    this.channel = channel;
    this.reference = reference;
    this.onFinish = onFinish;
    this.buffer = [];
    this.head = 0;
    this.waiting = undefined;
    this.ended = false;
    this.error = undefined;
    this.finished = false;
    channel.addIterator(this);
  }

  push(value) {
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      // Through call(): every promise has its own resolve function, and V8 optimized this call for the first
      // one it saw, then threw the whole receive loop (push is inlined into it) away at the second.
      waiting.resolve.call(undefined, {value, done: false});
    } else {
      this.buffer.push(value);
    }
  }

  end(error) {
    this.ended = true;
    this.error = error;
    this.channel.removeIterator(this);
    const waiting = this.waiting;
    if (waiting !== undefined) {
      this.waiting = undefined;
      this.complete().then(waiting.resolve, waiting.reject);
    }
  }

  next() {
    if (this.head < this.buffer.length) {
      const value = this.buffer[this.head];
      this.buffer[this.head++] = undefined;
      if (this.head === this.buffer.length) {
        this.buffer = [];
        this.head = 0;
      }
      return Promise.resolve({value, done: false});
    }
    if (this.ended) {
      return this.complete();
    }
    return new Promise((resolve, reject) => {
      this.waiting = {resolve, reject};
    });
  }

  return(value) {
    return this.complete().then(() => ({value, done: true}));
  }

  throw(error) {
    return this.complete().then(() => Promise.reject(error));
  }

  /** Stops listening, runs the owner's completion once, and rethrows the channel's failure if any. */
  async complete() {
    if (!this.finished) {
      this.finished = true;
      this.buffer = [];
      this.channel.removeIterator(this);
      if (this.onFinish !== undefined) {
        await this.onFinish();
      }
    }
    if (this.error !== undefined) {
      const error = this.error;
      this.error = undefined;
      throw error;
    }
    return {value: undefined, done: true};
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

module.exports = {MessageIterator};
