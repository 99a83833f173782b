'use strict';

// Loads the compiled addon through the loader napi-rs generates (binding.js), turning its failure into an
// error that says which platform package is missing and how to build from source.

let binding;
try {
  binding = require('../binding.js');
} catch (error) {
  const target = `${process.platform}-${process.arch}`;
  throw new Error(
    `native-ipc has no compiled binary for this platform (${target}, Node ${process.version}).
Install the matching platform package (for example native-ipc-${target}-gnu), or build it from source:
install Rust (https://rustup.rs), then run \`npm run build\` inside node_modules/native-ipc.`,
    {cause: error},
  );
}

module.exports = binding;
