// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The import rule (docs/ARCHITECTURE.md, "Where code lives"): which workspace packages each
 * package may import, in its production code and in its test code (tests, `src/testkit/`,
 * `src/bench/`), the latter being what its tsconfig references so the build order holds.
 * Production code imports no test support; no code reaches another package by a relative path.
 */
const PACKAGES = ['core', 'dashboard', 'client', 'server', 'generator', 'release'];
const MAY_IMPORT = {
  core: { production: [], test: [] },
  dashboard: { production: [], test: [] },
  client: { production: ['core'], test: ['core', 'generator'] },
  server: { production: ['core', 'dashboard'], test: ['core', 'dashboard'] },
  generator: { production: ['core'], test: ['core'] },
  release: { production: ['core', 'client', 'generator'], test: ['core', 'client', 'generator', 'server'] },
};
const TEST_CODE = ['**/*.test.ts', '**/src/testkit/**', '**/src/bench/**'];
const TEST_SUPPORT = '(^|/)(testkit|bench)(/|$)';
const RELATIVE_INTO_PACKAGE = `(^|/)packages/|^(\\.\\./)+(${PACKAGES.join('|')})/(src|dist)(/|$)`;

/** no-restricted-imports covers import and export declarations; no-restricted-syntax covers import(). */
function importRule(pkg, kind) {
  const forbidden = PACKAGES.filter((p) => p !== pkg && !MAY_IMPORT[pkg][kind].includes(p));
  const rules = [
    {
      regex: RELATIVE_INTO_PACKAGE,
      message: 'reach another workspace package by its name (@sysattest/…), never by a relative path',
    },
  ];
  const allowed = MAY_IMPORT[pkg][kind].map((p) => `@sysattest/${p}`).join(', ');
  if (forbidden.length > 0)
    rules.push({
      regex: `^@sysattest/(${forbidden.join('|')})(/|$)`,
      message: `${pkg}'s ${kind} code imports ${allowed ? `only ${allowed}` : 'no other workspace package'} (docs/ARCHITECTURE.md)`,
    });
  if (kind === 'production')
    rules.push({
      regex: TEST_SUPPORT,
      message: 'production code imports no test support (src/testkit/, src/bench/)',
    });
  const dynamic = rules.map((r) => ({
    selector: `ImportExpression[source.value=/${r.regex.replaceAll('/', '\\/')}/]`,
    message: r.message,
  }));
  return {
    'no-restricted-imports': ['error', { patterns: rules }],
    'no-restricted-syntax': ['error', ...dynamic],
  };
}

const importRules = PACKAGES.flatMap((pkg) => [
  {
    files: [`packages/${pkg}/**/*.{ts,js,mjs}`],
    ignores: TEST_CODE,
    rules: importRule(pkg, 'production'),
  },
  {
    files: TEST_CODE.map((glob) => `packages/${pkg}/${glob}`),
    rules: importRule(pkg, 'test'),
  },
]);

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/fixtures/**', 'release/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  ...importRules,
);
