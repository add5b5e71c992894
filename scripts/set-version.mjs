#!/usr/bin/env node
// `npm run set-version X.Y.Z`: writes sysattest's one version where it lives
// (packages/core/src/version.ts) and where npm needs it (every package.json, the dependencies
// between the workspaces, package-lock.json). Add the CHANGELOG.md entry yourself; the release
// tests check that all of these agree.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

const version = process.argv[2];
if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version ?? '')) {
  process.stderr.write('usage: npm run set-version X.Y.Z\n');
  process.exit(64);
}
const versionFile = 'packages/core/src/version.ts';
const source = fs.readFileSync(versionFile, 'utf8');
fs.writeFileSync(
  versionFile,
  source.replace(/SYSATTEST_VERSION = '[^']*'/, `SYSATTEST_VERSION = '${version}'`),
);
const root = JSON.parse(fs.readFileSync('package.json', 'utf8'));
for (const file of ['package.json', ...root.workspaces.map((w) => `${w}/package.json`)]) {
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  pkg.version = version;
  for (const kind of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies'])
    for (const name of Object.keys(pkg[kind] ?? {}))
      if (name.startsWith('@sysattest/')) pkg[kind][name] = version;
  fs.writeFileSync(file, `${JSON.stringify(pkg, null, 2)}\n`);
}
execFileSync('npm', ['install', '--package-lock-only', '--ignore-scripts', '--no-audit', '--no-fund'], {
  stdio: 'inherit',
});
process.stdout.write(`sysattest ${version}: now add its CHANGELOG.md entry\n`);
