import { SYSATTEST_VERSION } from '@sysattest/core';

/**
 * The generator's version, recorded in every manifest and catalog it signs: sysattest's one
 * version (core's version.ts). What changed in the documents it signs is in CHANGELOG.md.
 */
export const GENERATOR_VERSION = SYSATTEST_VERSION;
