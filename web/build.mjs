// Builds the web app into dist/: one bundled, minified script (with its source map), the page
// and the style sheet. `veza-stream` embeds dist/ when it is compiled.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
rmSync(`${here}dist`, { recursive: true, force: true });
mkdirSync(`${here}dist`, { recursive: true });
await build({
  entryPoints: [`${here}src/main.jsx`],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: ['chrome110', 'safari16', 'firefox115'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: `${here}dist/app.js`,
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) copyFileSync(`${here}src/${f}`, `${here}dist/${f}`);
// uPlot's own styles (its legend and cursor), as the package ships them.
copyFileSync(`${here}node_modules/uplot/dist/uPlot.min.css`, `${here}dist/uplot.css`);
console.log('web app built into web/dist');
