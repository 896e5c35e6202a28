// Lint rules plus the dependency rules of ARCHITECTURE.md. The rules use ESLint's own
// no-restricted-imports (regex patterns per folder): the usual plugin for this,
// eslint-plugin-import-x, needs platform binaries that the npm registry here does not serve for
// every platform, which breaks `npm ci`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const productNotTest = { regex: '(^|/)test/', message: 'product code must not import test code' };
const rule = (patterns) => ['error', { patterns }];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.cosmos-backup/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': rule([
        { regex: '(^|/)agent/', message: 'shared/ must not import agent/' },
        { regex: '(^|/)controller/', message: 'shared/ must not import controller/' },
        productNotTest,
      ]),
    },
  },
  {
    files: ['agent/**/*.ts'],
    rules: {
      'no-restricted-imports': rule([
        { regex: '(^|/)controller/', message: 'agent/ and controller/ meet only through shared/' },
        productNotTest,
      ]),
    },
  },
  {
    files: ['controller/**/*.ts'],
    rules: {
      'no-restricted-imports': rule([
        { regex: '(^|/)agent/', message: 'agent/ and controller/ meet only through shared/' },
        productNotTest,
      ]),
    },
  },
  {
    files: ['controller/db/**/*.ts', 'controller/sessions/**/*.ts', 'controller/azure/**/*.ts', 'controller/workers/**/*.ts', 'controller/notifications/**/*.ts'],
    rules: {
      'no-restricted-imports': rule([
        { regex: '(^|/)agent/', message: 'agent/ and controller/ meet only through shared/' },
        productNotTest,
        { regex: '^hono($|/)|^@hono/', message: 'Hono stays in controller/api' },
        { regex: '(^|/)api/', message: 'only the API layer knows about HTTP' },
      ]),
    },
  },
  {
    files: ['controller/policies/**/*.ts'],
    rules: {
      'no-restricted-imports': rule([
        { regex: '(^|/)agent/', message: 'agent/ and controller/ meet only through shared/' },
        productNotTest,
        { regex: '^hono($|/)|^@hono/', message: 'policies are pure: no framework' },
        { regex: '(^|/)(db|azure|sessions|api|notifications)/', message: 'policies are pure: no I/O' },
        { regex: '^(pg|@electric-sql/pglite|@azure/.*|node:fs.*|node:net|node:http.*)$', message: 'policies are pure: no I/O' },
      ]),
    },
  },
);
