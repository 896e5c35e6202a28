// Lint rules plus the dependency rules of ARCHITECTURE.md, enforced by import-x.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.cosmos-backup/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      'import-x/no-restricted-paths': ['error', {
        zones: [
          { target: './shared', from: './agent', message: 'shared/ must not import agent/' },
          { target: './shared', from: './controller', message: 'shared/ must not import controller/' },
          { target: './shared', from: './test', message: 'product code must not import test code' },
          { target: './agent', from: './controller', message: 'agent/ and controller/ meet only through shared/' },
          { target: './agent', from: './test', message: 'product code must not import test code' },
          { target: './controller', from: './agent', message: 'agent/ and controller/ meet only through shared/' },
          { target: './controller', from: './test', message: 'product code must not import test code' },
          { target: './controller/policies', from: './controller/db', message: 'policies are pure: no I/O' },
          { target: './controller/policies', from: './controller/azure', message: 'policies are pure: no I/O' },
          { target: './controller/policies', from: './node_modules/hono', message: 'policies are pure: no framework' },
          { target: './controller/db', from: './node_modules/hono', message: 'Hono stays in controller/api' },
          { target: './controller/sessions', from: './node_modules/hono', message: 'Hono stays in controller/api' },
          { target: './controller/azure', from: './node_modules/hono', message: 'Hono stays in controller/api' },
        ],
      }],
    },
  },
);
