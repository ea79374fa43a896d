import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.tmp/**', 'core/protocol/gen/**', '.lakesync/**', 'cdk.out/**', 'dist/**', '.cache/**', '.venv/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Floating promises lose work in Lambda and Durable Objects.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      'no-restricted-imports': 'off',
    },
  },
  {
    // The engine is runtime-agnostic: no Node built-ins, no cloud SDKs, no
    // middy outside adapters (see STYLE.md).
    files: ['core/**/*.ts'],
    ignores: ['core/adapters/**', 'core/**/*.test.ts', 'core/**/*.conformance.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:*'], message: 'core/ is runtime-agnostic; put Node code in an adapter.' },
            { group: ['@aws-sdk/*', '@middy/*', 'cloudflare:*', 'better-sqlite3'], message: 'vendor SDKs belong in adapters.' },
          ],
        },
      ],
    },
  },
);
