/** Integration tests share one RabbitMQ and one MariaDB, started by the global setup. */
module.exports = {
  // tsconfig.json sets isolatedModules, so ts-jest only transpiles: scripts/test.sh type-checks
  // src/, test/ and scripts/ once with tsc before jest, instead of every worker checking again.
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 2,
};
