/**
 * The import rule of eslint.config.js (docs/ARCHITECTURE.md, "Where code lives"), run on small
 * sources placed, by file path, where each boundary holds: `npm run lint` must fail when an import
 * crosses one, and pass on the imports the packages really make. (ESLint comes from the
 * repository's own devDependencies, as in CI.)
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The import-rule messages ESLint reports for `code` placed at `file` (relative to the repo). */
async function importFindings(eslint: ESLint, file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(repoRoot, file) });
  assert.ok(result, file);
  return result.messages
    .filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-syntax')
    .map((m) => m.message);
}

describe('the import rule', { timeout: 120_000 }, () => {
  let eslint: ESLint;
  before(() => {
    eslint = new ESLint({ cwd: repoRoot });
  });

  const refused: [string, string, RegExp][] = [
    ['packages/core/src/x.ts', "import { a } from '@sysattest/dashboard';", /core's production code imports no other/],
    ['packages/core/src/x.test.ts', "import { a } from '@sysattest/client/dist/x.js';", /core's test code/],
    ['packages/dashboard/src/x.ts', "import type { A } from '@sysattest/server';", /dashboard's production code/],
    ['packages/client/src/verify/x.ts', "import { a } from '@sysattest/server/dist/x.js';", /only @sysattest\/core/],
    ['packages/client/src/x.ts', "import { a } from '@sysattest/generator/dist/x.js';", /only @sysattest\/core/],
    ['packages/server/src/x.ts', "import { a } from '@sysattest/generator/dist/x.js';", /server's production/],
    ['packages/generator/src/x.ts', "import { a } from '@sysattest/release/dist/x.js';", /generator's production/],
    ['packages/client/src/verify/x.ts', "import { a } from '../testkit/e2e.js';", /no test support/],
    ['packages/server/src/x.ts', "export { a } from './bench/dataset.js';", /no test support/],
    ['packages/core/src/x.ts', "export const a = () => import('./testkit/gpg.js');", /no test support/],
    ['packages/release/src/x.ts', "import { a } from '@sysattest/client/dist/testkit/e2e.js';", /no test support/],
    ['packages/client/src/x.test.ts', "import { a } from '../../server/src/x.js';", /by its name/],
  ];
  for (const [file, code, message] of refused)
    it(`refuses ${code} in ${file}`, async () => {
      const found = await importFindings(eslint, file, code);
      assert.ok(
        found.some((m) => message.test(m)),
        `${file}: ${code}: ${found.join(' | ') || 'no finding'}`,
      );
    });

  const allowed: [string, string][] = [
    ['packages/client/src/verify/x.ts', "import { a } from '@sysattest/core';"],
    ['packages/server/src/x.ts', "import { a } from '@sysattest/dashboard';"],
    ['packages/client/src/verify/x.test.ts', "import { a } from '@sysattest/generator/dist/testkit/families.js';"],
    ['packages/client/src/testkit/x.ts', "import { a } from '@sysattest/generator/dist/generation/x.js';"],
    ['packages/server/src/bench/x.ts', "import { a } from '../testkit/store.js';"],
    ['packages/release/src/debian/x.test.ts', "import { a } from '@sysattest/client/dist/testkit/e2e.js';"],
  ];
  for (const [file, code] of allowed)
    it(`allows ${code} in ${file}`, async () => {
      assert.deepEqual(await importFindings(eslint, file, code), []);
    });
});
