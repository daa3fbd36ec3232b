// `npm run build`: the page plus onnxruntime-web's runtime files in dist/, ready for a bundle in dist/bundle/
// (`nst export --web DIR` writes the same folder with the bundle in it).
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, process.argv[2] || 'dist');
mkdirSync(join(out, 'ort'), { recursive: true });
const files = JSON.parse(readFileSync(join(here, 'files.json'), 'utf8'));
for (const file of files.page) copyFileSync(join(here, file), join(out, basename(file)));
mkdirSync(join(out, 'paintings'), { recursive: true }); // the server page's paintings and stylesheet: one copy each
for (const file of files.paintings) copyFileSync(join(here, file), join(out, 'paintings', basename(file)));
const runtime = join(here, 'node_modules', 'onnxruntime-web', 'dist');
for (const name of files.runtime) {
  copyFileSync(join(runtime, name), join(out, 'ort', name));
}
console.log(`wrote ${out}; put a bundle in ${join(out, 'bundle')} (nst export) and run python3 ${join(out, 'serve.py')}`);
