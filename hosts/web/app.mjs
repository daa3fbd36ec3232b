// The page's logic: load the runtime and the bundle, run a transfer with the shared JS core, draw every step.
// URL parameters drive it without clicks (tests, demos): ?content=URL&style=URL[,URL]&size=N&iterations=N
// &scales=N&threads=N&backend=wasm|webgpu&autorun=1. Results land in window.nstRun for whoever drives the page.
import { checkPixels, fromPixels, openBundle, outOfMemory, plan, stylize, toRGBA } from './nst-bundle.mjs';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const run = (window.nstRun = { records: [], done: false, error: null });
let stopRequested = false;

function say(text) {
  $('status').textContent = text;
}

async function loadRuntime() {
  // backend=wasm never asks for WebGPU; backend=webgpu insists on it; neither takes WebGPU when offered.
  const wanted = params.get('backend');
  const adapter = wanted !== 'wasm' && 'gpu' in navigator && (await navigator.gpu.requestAdapter());
  if (wanted === 'webgpu' && !adapter) throw new Error('backend=webgpu, but this browser offers no WebGPU adapter');
  const gpu = Boolean(adapter);
  run.adapter = gpu ? { vendor: adapter.info?.vendor, architecture: adapter.info?.architecture } : null;
  const ort = await import(gpu ? './ort/ort.min.mjs' : './ort/ort.wasm.min.mjs');
  ort.env.wasm.wasmPaths = new URL('./ort/', location.href).href;
  // Threads need cross-origin isolation (COOP/COEP headers: serve.py sends them).
  const threads = Number(params.get('threads')) || Math.min(4, navigator.hardwareConcurrency || 1);
  ort.env.wasm.numThreads = crossOriginIsolated ? threads : 1;
  return { ort, providers: gpu ? ['webgpu', 'wasm'] : ['wasm'], threads: ort.env.wasm.numThreads };
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
  return response;
}

const fetchBytes = async (url) => new Uint8Array(await (await fetchOk(url)).arrayBuffer());

async function fetchManifest() {
  const hint = 'serve the folder nst export --web wrote (its bundle/ holds the graphs)';
  try {
    return await (await fetchOk('bundle/manifest.json')).json();
  } catch (err) {
    throw new Error(`no bundle here (${err.message}): ${hint}`);
  }
}

// A number field or URL parameter: undefined when empty, else the number, or the text when it is none (plan()
// says what is out of range, quoting what was given).
function asked(fieldValue, param) {
  const text = String(fieldValue ?? '').trim() || (params.get(param) ?? '').trim();
  if (text === '') return undefined;
  return /^[+-]?\d+(\.\d+)?$/.test(text) ? Number(text) : JSON.stringify(text);
}

async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

// The stored values (no colour management), as the other hosts read files; fromPixels composites transparency
// on white.
async function decode(blob, manifest) {
  const options = { colorSpaceConversion: 'none', premultiplyAlpha: 'none' };
  const name = blob.name || 'an image';
  const bitmap = await createImageBitmap(blob, options).catch((err) => {
    throw new Error(`${name} cannot be read as an image (${err.message})`);
  });
  checkPixels(manifest, name, bitmap.width, bitmap.height);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff'; // composited here: the canvas keeps premultiplied pixels, so reading them back
  context.fillRect(0, 0, bitmap.width, bitmap.height); // unpremultiplied would lose more at low alpha
  context.drawImage(bitmap, 0, 0);
  return fromPixels(context.getImageData(0, 0, bitmap.width, bitmap.height).data, bitmap.height, bitmap.width);
}

function draw(img) {
  const canvas = $('canvas');
  [canvas.width, canvas.height] = [img.w, img.h];
  canvas.getContext('2d').putImageData(new ImageData(toRGBA(img), img.w, img.h), 0, 0);
}

// WebAssembly memory ends at 4 GB, which a step's activations fill at large sizes: say so, and what to do.
function memoryError(err, size) {
  if (!outOfMemory(err)) return null;
  const wasm = run.backend?.startsWith('wasm');
  const where = wasm ? "the browser's WebAssembly memory (4 GB)" : 'the memory the browser gives this page';
  return new Error(`${size} px is more than ${where} holds: give a smaller size, or use the Node or Python host`);
}

async function transfer(bundle, contentBlob, styleBlobs, asks) {
  const todo = plan(bundle.manifest, asks);
  const content = await decode(contentBlob, bundle.manifest);
  const styles = await Promise.all(styleBlobs.map((blob) => decode(blob, bundle.manifest)));
  const total = todo.iterations.reduce((a, b) => a + b, 0);
  const result = await stylize(bundle, content, styles, {
    ...todo,
    settings: bundle.manifest.defaults,
    onStep: async (record, image) => {
      run.records.push(record);
      draw(image);
      $('caption').textContent = `step ${record.iteration + 1} at ${record.size} px`;
      say(`step ${record.iteration + 1} of ${total} at ${record.size} px: loss ${record.loss.toExponential(4)}, ` +
        `${record.seconds} s (${run.backend})`);
      // A step holds the main thread: let the page paint a frame (and take clicks) between steps; a hidden
      // tab gets no frames, so there it only yields.
      const frame = document.hidden ? (f) => f() : requestAnimationFrame;
      await new Promise((resolve) => frame(() => setTimeout(resolve, 0)));
      return stopRequested;
    },
  }).catch((err) => {
    throw memoryError(err, todo.size) ?? err;
  });
  draw(result);
  run.pixels = Array.from(toRGBA(result));
  run.size = [result.h, result.w];
  const link = $('download');
  link.href = URL.createObjectURL(await $('canvas').convertToBlob?.() ?? (await new Promise((r) => $('canvas').toBlob(r))));
  link.hidden = false;
}

async function main() {
  const { ort, providers, threads } = await loadRuntime();
  const files = { manifest: await fetchManifest() };
  for (const name of ['features.onnx', 'step.onnx']) files[name] = await fetchBytes(`bundle/${name}`);
  say('preparing the graphs…');
  const bundle = await openBundle(ort, files, { executionProviders: providers, graphOptimizationLevel: 'all' }, sha256);
  run.backend = `${providers[0]}, ${threads} thread(s)`;
  say(`ready: ${run.backend}${crossOriginIsolated ? '' : ' (not cross-origin isolated: one thread)'}`);
  $('size').value = params.get('size') || bundle.manifest.defaults.size;
  const go = async (content, styles) => {
    $('start').disabled = true;
    $('stop').disabled = false;
    const asks = {
      size: asked($('size').value, 'size'),
      iterations: asked($('iterations').value, 'iterations'),
      lastScales: asked('', 'scales'),
    };
    try {
      [run.done, run.error, run.records, stopRequested] = [false, null, [], false];
      $('download').hidden = true;
      await transfer(bundle, content, styles, asks);
      say(`done: ${run.records.length} steps in ${run.records.at(-1).seconds} s (${run.backend})`);
    } finally {
      run.done = true;
      $('start').disabled = !($('content').files.length && $('style').files.length);
      $('stop').disabled = true;
    }
  };
  for (const id of ['content', 'style']) {
    $(id).onchange = () => {
      $(`${id}-preview`).src = URL.createObjectURL($(id).files[0]);
      $('start').disabled = !($('content').files.length && $('style').files.length);
    };
  }
  $('start').onclick = () => go($('content').files[0], Array.from($('style').files)).catch(report);
  $('stop').onclick = () => (stopRequested = true);
  if (params.get('autorun')) {
    const file = async (url) => new File([await (await fetchOk(url)).blob()], url); // named in messages
    const blobs = async (urls) => Promise.all(urls.map(file));
    const [content] = await blobs([params.get('content')]);
    const styles = await blobs(params.get('style').split(','));
    $('content-preview').src = params.get('content');
    $('style-preview').src = params.get('style').split(',')[0];
    await go(content, styles);
  }
}

function report(err) {
  run.error = String(err && err.message ? err.message : err);
  run.done = true;
  say(`error: ${run.error}`);
}

main().catch(report);
