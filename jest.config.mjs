/**
 * Two projects in ESM mode (run Jest with `node --experimental-vm-modules`): `unit` for the
 * specs beside the code, `e2e` for the workspace suites under `test/` that drive built output.
 */
const transform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.spec.json' }],
};

const moduleNameMapper = {
  '^@portcullis/(audit|contracts|core|crypto|messaging|security)$': '<rootDir>/libs/$1/src',
};

const common = {
  rootDir: import.meta.dirname,
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  transform,
  moduleNameMapper,
  setupFiles: ['<rootDir>/jest/set-up-environment.mjs'],
  modulePathIgnorePatterns: ['<rootDir>/dist/'],
};

/** @type {import('jest').Config} */
export default {
  // A global option: Jest ignores testTimeout inside a project. Long end-to-end steps
  // (start-up, outages) set their own limits where they need more.
  testTimeout: 60_000,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'],
      testTimeout: 30_000,
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      testTimeout: 180_000,
    },
  ],
};
