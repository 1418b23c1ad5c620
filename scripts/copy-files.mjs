// `cp FILE... DIR` for npm run build, in plain node so that the build needs no shell tools: it
// copies what tsc does not emit (the ops page's ops.html and ops.css) into dist/.
// scripts/validate-docker.sh reads the arguments: all but the last are build inputs, the last is
// the output directory.
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const files = process.argv.slice(2);
const dir = files.pop();
if (!dir || files.length === 0) {
  console.error('usage: node scripts/copy-files.mjs FILE... DIR');
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
for (const file of files) copyFileSync(file, path.join(dir, path.basename(file)));
