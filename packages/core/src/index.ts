/**
 * @sysattest/core — everything a verifier needs, with no network, database or podman:
 * platform ids, manifests and their canonical bytes, OpenPGP signing and verification against
 * pinned keys, version ordering, package-database readers, in-root resolution and hashing.
 */
export * from './errors.js';
export { SYSATTEST_VERSION } from './version.js';
export * from './platform/index.js';
export * from './versions/index.js';
export * from './openpgp/index.js';
export * from './signed/index.js';
export * from './manifest/index.js';
export * from './catalog/index.js';
export * from './pkgdb/model.js';
export * from './pkgdb/dpkg/index.js';
export * from './pkgdb/rpm/index.js';
export * from './pkgdb/apk/index.js';
export * from './pkgdb/installed.js';
export * from './fs/index.js';
export { EXIT, runCli } from './cli/run-cli.js';
export * from './protocol/index.js';
export * from './transport/index.js';
