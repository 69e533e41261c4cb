#!/usr/bin/env node
// Bundles the dashboard (web/dashboard, Preact + uPlot + diff) into dist/dashboard: index.html,
// app.js and app.css, which every member serves at / on its HTTP port. Part of `npm run build`,
// so the npm package ships the built files and a user runs no build step. Prints the sizes.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
const out = `${root}dist/dashboard`;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: `${root}web/dashboard/main.tsx` },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(`${root}web/dashboard/index.html`, `${out}/index.html`);
const sizes = Object.fromEntries(
  ['index.html', 'app.js', 'app.css'].map((name) => {
    const bytes = readFileSync(`${out}/${name}`);
    return [name, { bytes: statSync(`${out}/${name}`).size, gzipBytes: gzipSync(bytes).length }];
  }),
);
if (process.env.LICHEN_BUILD_VERBOSE) console.log(JSON.stringify({ dashboard: sizes }));
