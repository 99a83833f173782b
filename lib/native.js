'use strict';

// Loads the compiled addon through the loader napi-rs generates (binding.js). The binary reaches users as an
// optional dependency, one package per platform (npm/<platform>/ in the repository); when that fails, the
// error says which package this platform needs, whether one is published, and how to build from source.

const path = require('node:path');

const REPOSITORY = 'https://github.com/native-ipc/native-ipc';

/** glibc or musl, from the runtime report (no child process, no file read). */
const linuxLibc = () => {
  try {
    const {header} = process.report.getReport();
    return header.glibcVersionRuntime === undefined ? 'musl' : 'gnu';
  } catch {
    return 'gnu';
  }
};

/** The napi-rs name of this platform, as in `native-ipc.<platform>.node` and `native-ipc-<platform>`. */
const platformName = () => {
  const {platform, arch} = process;
  switch (platform) {
    case 'linux': {
      const libc = linuxLibc();
      return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`;
    }
    case 'win32':
      return `win32-${arch}-msvc`;
    case 'android':
      return arch === 'arm' ? 'android-arm-eabi' : `android-${arch}`;
    default:
      return `${platform}-${arch}`;
  }
};

const isInstalled = (name) => {
  try {
    require.resolve(`${name}/package.json`);
    return true;
  } catch {
    return false;
  }
};

const loadError = (cause) => {
  const platform = platformName();
  const packageName = `native-ipc-${platform}`;
  const {optionalDependencies = {}} = require('../package.json');
  const published = Object.keys(optionalDependencies).map((name) => name.replace(/^native-ipc-/, ''));
  const lines = [`native-ipc cannot load its native addon on ${platform} (Node ${process.version}).`];
  if (cause?.code === 'MODULE_NOT_FOUND' && String(cause.message).includes('binding.js')) {
    lines.push('This source checkout was never built: run `npm install` (or `npm run build`) in it.');
  } else {
    if (isInstalled(packageName)) {
      lines.push(`The package ${packageName} is installed, but its binary failed to load (see the cause).`);
    } else if (published.includes(platform)) {
      lines.push(
        `The optional dependency ${packageName}, which carries the binary for this platform, is not installed:`,
        'install again without --omit=optional or --no-optional (if the lockfile was made on another platform,',
        'delete node_modules and package-lock.json first).',
      );
    } else {
      lines.push(
        `No prebuilt binary is published for this platform: there is no package ${packageName}`,
        `(prebuilt: ${published.length === 0 ? 'none' : published.join(', ')}).`,
      );
    }
    lines.push(
      `To build the addon from source (needs Rust, https://rustup.rs): clone ${REPOSITORY},`,
      `run \`npm install\` in it (that builds native-ipc.${platform}.node), then copy that file into`,
      `${path.dirname(__dirname)}, or set NAPI_RS_NATIVE_LIBRARY_PATH to its absolute path.`,
    );
  }
  return new Error(lines.join('\n'), {cause});
};

/**
 * The common case, straight: a glibc Linux binary next to this package or in its platform package. The
 * generated loader (binding.js) tells libc and platforms apart, which costs ~4 ms of every child's start-up;
 * it stays the path for everything else (and for a glibc binary that does not load, e.g. on musl).
 */
const loadDirect = () => {
  if (process.platform !== 'linux' || process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
    return undefined;
  }
  const platform = `linux-${process.arch}-gnu`;
  // lib/load.js loads the file next to the package without resolving its path (not in a vm context).
  const nextToPackage = require('./load.js').directAddon();
  if (nextToPackage !== undefined) {
    return nextToPackage;
  }
  try {
    return require(`../native-ipc.${platform}.node`);
  } catch {}
  try {
    // As binding.js does: only the platform package of this very version.
    const packageName = `native-ipc-${platform}`;
    if (require(`${packageName}/package.json`).version === require('../package.json').version) {
      return require(packageName);
    }
  } catch {}
  return undefined;
};

let binding = loadDirect();
if (binding === undefined) {
  try {
    binding = require('../binding.js');
  } catch (error) {
    throw loadError(error);
  }
}

module.exports = binding;
