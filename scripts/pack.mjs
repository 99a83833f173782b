#!/usr/bin/env node
// Packs what a release publishes, from the addon already built here (`npm run build`):
//
//   - native-ipc-<version>.tgz: the JS, the types and the generated loader (binding.js), no binary;
//   - native-ipc-<platform>-<version>.tgz for each platform whose binary is present: the package described in
//     npm/<platform>/ with native-ipc.<platform>.node added. The main package names these packages in
//     `optionalDependencies`; npm installs the one whose `os`, `cpu` and `libc` match the machine, and
//     binding.js loads it.
//
//   node scripts/pack.mjs [output directory]    (default: ./dist)
//
// Prints a JSON object {main, platforms: {<platform>: tarball}} with absolute paths. The binary is copied into
// a staging copy of npm/<platform>/, never into the repository. `npm pack` runs with --ignore-scripts, since
// `prepare` would rebuild the addon in release mode, which takes minutes and was already done.
import {execFileSync} from 'node:child_process';
import {copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const output = path.resolve(process.argv[2] ?? path.join(root, 'dist'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const binaryName = pkg.napi.binaryName;

const fail = (message) => {
  console.error(`pack: ${message}`);
  process.exit(1);
};

/** Runs `npm pack` in `directory` and returns the tarball's absolute path. */
const pack = (directory) => {
  const text = execFileSync(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', output], {
    cwd: directory,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [{filename}] = JSON.parse(text);
  return path.join(output, filename);
};

if (!existsSync(path.join(root, 'binding.js'))) {
  fail('the addon is not built: run `npm run build` first.');
}
mkdirSync(output, {recursive: true});

const platforms = {};
const staging = mkdtempSync(path.join(os.tmpdir(), 'native-ipc-pack-'));
try {
  for (const platform of readdirSync(path.join(root, 'npm'), {withFileTypes: true})) {
    if (!platform.isDirectory()) {
      continue;
    }
    const binary = path.join(root, `${binaryName}.${platform.name}.node`);
    if (!existsSync(binary)) {
      continue;
    }
    const platformPackage = JSON.parse(readFileSync(path.join(root, 'npm', platform.name, 'package.json'), 'utf8'));
    if (platformPackage.version !== pkg.version) {
      fail(`npm/${platform.name}/package.json has version ${platformPackage.version}, the package ${pkg.version}.`);
    }
    if (pkg.optionalDependencies?.[platformPackage.name] !== pkg.version) {
      fail(`package.json's optionalDependencies must name ${platformPackage.name}@${pkg.version}.`);
    }
    const directory = path.join(staging, platform.name);
    cpSync(path.join(root, 'npm', platform.name), directory, {recursive: true});
    copyFileSync(binary, path.join(directory, path.basename(binary)));
    platforms[platform.name] = pack(directory);
  }
  if (Object.keys(platforms).length === 0) {
    fail(`no ${binaryName}.<platform>.node next to package.json matches a package under npm/.`);
  }
} finally {
  rmSync(staging, {recursive: true, force: true});
}

console.log(JSON.stringify({main: pack(root), platforms}, null, 2));
