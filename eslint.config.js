// Lint rules: typescript-eslint's recommended set, plus the purity rule of ARCHITECTURE.md
// (pure layers read no environment; adapters live at the edges).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const PURE_LAYERS = ['src/core/**', 'src/identity/**', 'src/policy/**', 'src/events/**', 'src/detect/**', 'src/pki/**'];

export default tseslint.config(
  { ignores: ['.dependency-cruiser.cjs', 'dist/**', 'node_modules/**', 'ui/dist/**', 'bench/results/**', 'build/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', structuredClone: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', crypto: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: PURE_LAYERS,
    ignores: ['src/pki/keystore/**'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Pure layers read no environment: take it as a parameter.' }],
    },
  },
);
