'use strict';

// Synchronous option checks: each error names the call, the option and what it accepts.

const describe = (value) => {
  if (value === null) {
    return 'null';
  }
  if (typeof value === 'string') {
    return JSON.stringify(value);
  }
  if (typeof value === 'function') {
    return 'a function';
  }
  if (Array.isArray(value)) {
    return 'an array';
  }
  return typeof value === 'object' ? 'an object' : `${String(value)} (${typeof value})`;
};

const fail = (call, message) => {
  const error = new TypeError(`${call}: ${message}`);
  error.code = 'ERR_INVALID_ARG_VALUE';
  return error;
};

const checkOptionsObject = (call, options, known) => {
  if (options === undefined) {
    return {};
  }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw fail(call, `its options must be an object, not ${describe(options)}.`);
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw fail(call, `unknown option \`${key}\`; it accepts ${known.map((k) => `\`${k}\``).join(', ')}.`);
    }
  }
  return options;
};

const checkBoolean = (call, name, value, fallback) => {
  if (value === undefined) {
    return fallback;
  }
  if (typeof value !== 'boolean') {
    throw fail(call, `the \`${name}\` option must be a boolean, not ${describe(value)}.`);
  }
  return value;
};

const NOT_STRICT = Object.freeze({strict: false});
const DEFAULT_GET_ONE = Object.freeze({filter: undefined, reference: true});
const DEFAULT_GET_EACH = Object.freeze({reference: true});

const validateSendOptions = (name, options) => {
  if (options === undefined) {
    return NOT_STRICT;
  }
  const call = `${name}()`;
  const {strict} = checkOptionsObject(call, options, ['strict']);
  return {strict: checkBoolean(call, 'strict', strict, false)};
};

const validateGetOneOptions = (name, options) => {
  if (options === undefined) {
    return DEFAULT_GET_ONE;
  }
  const call = `${name}()`;
  const {filter, reference} = checkOptionsObject(call, options, ['filter', 'reference']);
  if (filter !== undefined && typeof filter !== 'function') {
    throw fail(call, `the \`filter\` option must be a function, not ${describe(filter)}.`);
  }
  return {filter, reference: checkBoolean(call, 'reference', reference, true)};
};

const validateGetEachOptions = (name, options) => {
  if (options === undefined) {
    return DEFAULT_GET_EACH;
  }
  const call = `${name}()`;
  const {reference} = checkOptionsObject(call, options, ['reference']);
  return {reference: checkBoolean(call, 'reference', reference, true)};
};

module.exports = {
  describe,
  fail,
  checkBoolean,
  validateSendOptions,
  validateGetOneOptions,
  validateGetEachOptions,
};
