import { defineConfig } from 'vitest/config';

// Pure logic tests sit beside the code; integration tests live in test/ and
// name their environment. Each group runs as its own project.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['core/**/*.test.ts', 'clients/**/*.test.ts', 'functions/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'local',
          include: ['test/**/*.test.ts'],
          exclude: ['test/lake/**', 'test/aws/**', 'test/infra/**'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Servers are started per file on port 0; files may run in parallel.
        },
      },
      {
        test: {
          // The CDK app: template assertions, cdk-nag, cfn-lint (synthesis bundles with esbuild).
          name: 'infra',
          include: ['test/infra/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/python-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // The lake, read back by pyarrow / pyiceberg / DuckDB from the project venv.
          name: 'lake',
          include: ['test/lake/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/python-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          // The AWS functions in-process against moto (test/support/lambda-driver.ts), read back by pyiceberg.
          name: 'aws',
          include: ['test/aws/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/support/python-setup.ts'],
          testTimeout: 240_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
