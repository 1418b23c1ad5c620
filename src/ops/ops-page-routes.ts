import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Router } from 'express';

/*
 * The page is three files in page/: ops.html, with a placeholder each for ops.css and for the
 * compiled ops-page.ts. npm run build compiles the script (tsconfig.ops-page.json) and copies the
 * other two, so dist/ops/page/ holds all three, next to this module in dist/ops/. Run from src/
 * (ts-jest, tsx), page/ holds the TypeScript source, so the script is the one the build wrote.
 */
const PAGE_DIR = path.join(__dirname, 'page');
const FROM_SOURCE = __filename.endsWith('.ts');
const SCRIPT_FILE = FROM_SOURCE ? path.resolve(__dirname, '..', '..', 'dist', 'ops', 'page', 'ops-page.js') : path.join(PAGE_DIR, 'ops-page.js');

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** A file of the page. Missing, the app does not start: the page would be served without it. */
function readPageFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`the ops page cannot be served: ${(err as Error).message} (npm run build writes dist/ops/page/)`);
  }
  // The browser hashes the inline text after the HTML parser has turned CR LF into LF.
  return text.replace(/\r\n?/g, '\n');
}

/** The template with `text` in place of its one `placeholder` (split, not replace(), which would expand $& in the text). */
function inline(template: string, placeholder: string, text: string, closingTag: string): string {
  const parts = template.split(placeholder);
  if (parts.length !== 2) throw new Error(`ops.html must hold ${placeholder} exactly once, not ${parts.length - 1} times`);
  // The HTML parser ends the element at its closing tag, wherever it stands in the CSS or script.
  if (text.toLowerCase().includes(closingTag)) throw new Error(`the ops page's inline ${placeholder} contains ${closingTag}, which would end it early`);
  return parts.join(text);
}

interface OpsPage {
  html: string;
  contentSecurityPolicy: string;
}
let page: OpsPage | undefined;

/** Reads and assembles the page once per process, when the first app is built. */
function loadOpsPage(): OpsPage {
  if (page) return page;
  const style = readPageFile(path.join(PAGE_DIR, 'ops.css'));
  const script = readPageFile(SCRIPT_FILE);
  if (FROM_SOURCE) {
    // A stale build would be served silently (jest runs src/ against dist/'s script).
    const source = path.join(PAGE_DIR, 'ops-page.ts');
    if (statSync(source).mtimeMs > statSync(SCRIPT_FILE).mtimeMs) {
      throw new Error(`the ops page cannot be served: ${SCRIPT_FILE} is older than ${source} (run npm run build)`);
    }
  }
  const html = inline(inline(readPageFile(path.join(PAGE_DIR, 'ops.html')), '{{ops.css}}', style, '</style'), '{{ops-page.js}}', script, '</script');
  /**
   * The page itself is public: it holds no data, and every call it makes to /v1/admin/* carries the
   * token the operator types. The CSP allows only the page's own inline script and style (by the
   * hash of the exact inlined text) and requests to this origin, and `form-action 'none'` keeps
   * the token out of any URL.
   */
  const contentSecurityPolicy = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  page = { html, contentSecurityPolicy };
  return page;
}

/** GET /ops: the operator's dashboard, one self-contained HTML page over the admin API. */
export function createOpsPageRoutes(): Router {
  const { html, contentSecurityPolicy } = loadOpsPage();
  const router = Router();
  router.get('/ops', (_req, res) => {
    res.setHeader('Content-Security-Policy', contentSecurityPolicy);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.type('html').send(html);
  });
  return router;
}
