// ESLint flat config (kept under scripts/ so the top-level layout stays as designed).
// `npm run lint` passes it with -c; basePath makes its patterns relative to the repo root.
import tseslint from 'typescript-eslint';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export default tseslint.config(
  // The client's openapi.ts is generated (openapi-typescript); a test keeps it fresh.
  { basePath: root, ignores: ['dist/**', 'node_modules/**', 'bench-results/**', '.stack/**', 'clients/typescript/dist/**', 'clients/typescript/src/openapi.ts'] },
  {
    basePath: root,
    files: ['src/**/*.ts', 'test/**/*.ts', 'scripts/**/*.ts', 'clients/typescript/src/**/*.ts'],
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parserOptions: {
        project: [path.join(root, 'tsconfig.json'), path.join(root, 'tsconfig.ops-page.json'), path.join(root, 'clients', 'typescript', 'tsconfig.json')],
        tsconfigRootDir: root,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // The pool allows multi-statement queries (transactionInRounds): SQL text is built from
    // constants only, and every value is bound. A template with interpolations needs a reason.
    basePath: root,
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'CallExpression[callee.property.name=/^(raw|query)$|Raw$/] > TemplateLiteral[expressions.length>0]',
          message: 'No interpolated SQL: bind values with ? (the pool runs multi-statement queries).',
        },
        {
          selector: "CallExpression[callee.property.name=/^(raw|query)$|Raw$/] > BinaryExpression[operator='+']",
          message: 'No SQL built by concatenation: bind values with ?.',
        },
      ],
    },
  },
  {
    // Domain files stay free of the HTTP, database and broker libraries (Temporal's samples do the same).
    basePath: root,
    files: [
      'src/payments/payment-states.ts',
      'src/payments/payment-resource.ts',
      'src/payments/payments-schemas.ts',
      'src/messaging/delay-levels.ts',
      'src/delay/retry-schedule.ts',
      'src/compensation/adapters/channel-adapter.ts',
      'src/notifications/notification-signing.ts',
    ],
    rules: {
      'no-restricted-imports': ['error', { paths: ['express', 'knex', 'amqplib', 'mysql2'] }],
    },
  },
);
