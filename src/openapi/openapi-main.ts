import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildOpenApiDocument } from './openapi-document';

/** The committed form of the document: docs/openapi.json is this, byte for byte. */
export function renderOpenApiDocument(): string {
  return `${JSON.stringify(buildOpenApiDocument(), null, 2)}\n`;
}

/*
 * `node dist/openapi/openapi-main.js FILE`, the last step of `npm run build`: writes the
 * document (docs/openapi.json in the repository), from which clients/typescript generates its types.
 */
if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist/openapi/openapi-main.js FILE');
    process.exit(2);
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, renderOpenApiDocument());
}
