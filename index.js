'use strict';

// native-ipc's public API (lib/api.js), for require(). Through lib/load.js: native-ipc's modules come from V8's
// code cache when `npm run build` made one.
module.exports = require('./lib/load.js').load('api.js');
