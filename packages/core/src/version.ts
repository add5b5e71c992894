/**
 * sysattest's version: the one place it is written. All three programs print it (`--version`),
 * the generator records it in every manifest and catalog it signs (`provenance.generator`), and
 * every package.json of the repository carries the same number (release.test.ts checks them and
 * CHANGELOG.md; `npm run set-version X.Y.Z` changes them all).
 */
export const SYSATTEST_VERSION = '0.4.0';
