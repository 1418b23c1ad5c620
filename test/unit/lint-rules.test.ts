import { spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * The project's lint rule against SQL built from strings (scripts/eslint.config.mjs), on a probe
 * under src/: it runs eslint on stdin, without type information (the probe is in no project).
 */
const root = path.resolve(__dirname, '..', '..');

function lint(source: string): Array<{ line: number; message: string }> {
  const run = spawnSync(
    process.execPath,
    [path.join(root, 'node_modules/eslint/bin/eslint.js'), '-c', 'scripts/eslint.config.mjs', '--parser-options', 'project:null', '--rule', '@typescript-eslint/no-floating-promises: off', '--format', 'json', '--stdin', '--stdin-filename', 'src/lint-probe.ts'],
    { cwd: root, input: source, encoding: 'utf8', timeout: 60000 },
  );
  const [report] = JSON.parse(run.stdout) as Array<{ messages: Array<{ line: number; message: string }> }>;
  return (report?.messages ?? []).map((m) => ({ line: m.line, message: m.message }));
}

describe('the lint rule against SQL built from strings', () => {
  it('when SQL is built by concatenation or an interpolating template, then each is an error, and bound SQL passes', () => {
    const found = lint(
      [
        'export const a = (db: any, id: string) => db.raw("SELECT * FROM payments WHERE id = " + id);',
        'export const b = (db: any, id: string) => db.raw(`SELECT * FROM payments WHERE id = ${id}`);',
        'export const c = (conn: any, id: string) => conn.query("DELETE FROM payments WHERE id = " + id);',
        'export const d = (db: any, id: string) => db.raw("SELECT * FROM payments WHERE id = ?", [id]);',
        'export const e = (db: any, id: string) => db.whereRaw("id = " + id);',
      ].join('\n'),
    );
    expect(found).toEqual([
      { line: 1, message: expect.stringMatching(/No SQL built by concatenation/) },
      { line: 2, message: expect.stringMatching(/No interpolated SQL/) },
      { line: 3, message: expect.stringMatching(/No SQL built by concatenation/) },
      { line: 5, message: expect.stringMatching(/No SQL built by concatenation/) },
    ]);
  }, 60000);
});
