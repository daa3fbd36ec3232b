// The page's logic: load the runtime and the bundle, run a transfer with the shared JS core, draw every step,
// show the overall progress (each scale weighted by its work, as nst's engine does) and the result beside the photo.
// URL parameters drive it without clicks (tests, demos): ?content=URL&style=URL[,URL]&size=N&iterations=N
// &scales=N&threads=N&backend=wasm|webgpu&autorun=1. Results land in window.nstRun for whoever drives the page.
import {
  checkPixels,
  fitSize,
  fromPixels,
  graphNames,
  manifestProblem,
  openBundle,
  outOfMemory,
  plan,
  scalePlan,
  stylize,
  toRGBA,
} from './nst-bundle.mjs';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const run = (window.nstRun = { records: [], done: false, error: null });
let stopRequested = false;
const PAGE_SIZE = 256; // the size shown first: a few minutes in a tab, where the bundle's 512 px takes tens

function say(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

// Larger sizes grow the time with the pixels: say so before anyone waits half an hour.
function sizeHint() {
  const size = Number($('size').value);
  $('size-out').textContent = size;
  const slow = size > PAGE_SIZE;
  $('size-hint').classList.toggle('warn', slow);
  $('size-hint').textContent = slow
    ? `At ${size} px this takes about ${Math.round((size / PAGE_SIZE) ** 2)} times as long as at ${PAGE_SIZE} px: ` +
      'tens of minutes in a browser tab. nst serve or the Node host is faster.'
    : 'Bigger pictures take longer: about four times as long for twice the size.';
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

// A small result is enlarged by a whole factor (each pixel a sharp square) to fill up to 512 px, never more.
function shownWidth(width) {
  return width * Math.max(1, Math.floor(Math.min(512, $('status').clientWidth) / width));
}

// A step's image, shown at the result's size (`shown` px wide): coarse steps are enlarged as sharp pixels.
function draw(img, shown = shownWidth(img.w)) {
  const canvas = $('canvas');
  if (canvas.width !== img.w || canvas.height !== img.h) [canvas.width, canvas.height] = [img.w, img.h];
  canvas.getContext('2d').putImageData(new ImageData(toRGBA(img), img.w, img.h), 0, 0);
  canvas.style.width = `${shown}px`;
  canvas.classList.toggle('enlarged', img.w < shown);
  $('frame').hidden = false;
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
  // Each step's share of the work: its pixels, so the quick coarse scales do not fill the bar.
  const scales = scalePlan(bundle.manifest, [content, ...styles], todo.size, todo.scales, todo.iterations);
  const pixels = Object.fromEntries(scales.map(({ side }) => [side, fitSize(content, side).reduce((a, b) => a * b)]));
  const total = scales.reduce((sum, { side, iterations }) => sum + pixels[side] * iterations, 0);
  const shown = shownWidth(fitSize(content, todo.size)[1]);
  let done = 0;
  $('bar').hidden = false;
  const result = await stylize(bundle, content, styles, {
    ...todo,
    settings: bundle.manifest.defaults,
    onStep: async (record, image) => {
      run.records.push(record);
      draw(image, shown);
      done += pixels[record.size] ?? 0;
      const fraction = Math.min(1, done / total);
      $('bar').value = fraction;
      say(`Painting: ${Math.floor(fraction * 100)}% done`);
      const left = fraction > 0.01 ? `about ${clock((record.seconds * (1 - fraction)) / fraction)} left` : 'estimating the time left';
      $('time').textContent = `${clock(record.seconds)} so far, ${left}`;
      $('time').hidden = false;
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
  const png = URL.createObjectURL(await new Promise((resolve) => $('canvas').toBlob(resolve)));
  $('download').href = png;
  $('download').hidden = false;
  $('after').src = png;
  $('before').src = URL.createObjectURL(contentBlob);
  $('compare').querySelector('.compare-box').style.width = `${shownWidth(result.w)}px`; // whole factors only
  $('after').classList.toggle('enlarged', shownWidth(result.w) > result.w);
  $('frame').hidden = true;
  $('bar').hidden = true;
  $('compare').hidden = false;
}

async function main() {
  const { ort, providers, threads } = await loadRuntime();
  const files = { manifest: await fetchManifest() };
  const names = manifestProblem(files.manifest) ? [] : graphNames(files.manifest); // openBundle names the damage
  for (const name of names) files[name] = await fetchBytes(`bundle/${name}`);
  say('preparing the graphs…');
  const bundle = await openBundle(ort, files, { executionProviders: providers, graphOptimizationLevel: 'all' }, sha256);
  run.backend = `${providers[0]}, ${threads} thread(s)`;
  $('engine').textContent = `Runs on ${run.backend}${crossOriginIsolated ? '' : ' (not cross-origin isolated: one thread)'}.`;
  say('Choose a photo and a painting, then press Start.');
  $('size').value = params.get('size') || Math.min(PAGE_SIZE, bundle.manifest.defaults.size);
  sizeHint();
  $('size').oninput = sizeHint;
  const ready = () => $('content').files.length && (chosen() !== 'own' || $('style').files.length);
  // fromUrl: a run the address asked for takes its size as written (the slider would clamp it to its range).
  const go = async (content, styles, fromUrl = false) => {
    $('start').disabled = true;
    $('stop').disabled = false;
    $('compare').hidden = true;
    const asks = {
      size: asked(fromUrl && params.has('size') ? params.get('size') : $('size').value, 'size'),
      iterations: asked($('iterations').value, 'iterations'),
      lastScales: asked('', 'scales'),
    };
    try {
      [run.done, run.error, run.records, stopRequested] = [false, null, [], false];
      $('download').hidden = true;
      await transfer(bundle, content, styles, asks);
      const seconds = run.records.at(-1).seconds;
      const how = stopRequested ? 'Stopped early' : 'Done';
      say(`${how} after ${clock(seconds)}. Slide to compare your photo with the result.`);
      $('time').hidden = true;
    } finally {
      run.done = true;
      $('start').disabled = !ready();
      $('stop').disabled = true;
    }
  };
  $('content').onchange = () => {
    $('content-preview').src = URL.createObjectURL($('content').files[0]);
    $('content-preview').hidden = false;
    $('start').disabled = !ready();
  };
  $('style').onchange = () => {
    document.querySelector('input[name=painting][value=own]').checked = true;
    $('start').disabled = !ready();
  };
  for (const radio of document.querySelectorAll('input[name=painting]')) radio.onchange = () => ($('start').disabled = !ready());
  $('split').oninput = () => $('compare').style.setProperty('--split', `${$('split').value}%`);
  $('start').disabled = !ready();
  $('form').onsubmit = (event) => {
    event.preventDefault();
    paintings().then((styles) => go($('content').files[0], styles)).catch(report);
  };
  $('stop').onclick = () => (stopRequested = true);
  if (params.get('autorun')) {
    const file = async (url) => new File([await (await fetchOk(url)).blob()], url); // named in messages
    const blobs = async (urls) => Promise.all(urls.map(file));
    const [content] = await blobs([params.get('content')]);
    const styles = await blobs(params.get('style').split(','));
    $('content-preview').src = params.get('content');
    $('content-preview').hidden = false;
    await go(content, styles, true);
  }
}

const chosen = () => document.querySelector('input[name=painting]:checked').value;

// The chosen painting (a bundled one, fetched from paintings/) or the files of one's own.
async function paintings() {
  if (chosen() === 'own') return Array.from($('style').files);
  return [new File([await (await fetchOk(`paintings/${chosen()}`)).blob()], chosen(), { type: 'image/jpeg' })];
}

function report(err) {
  run.error = String(err && err.message ? err.message : err);
  run.done = true;
  $('bar').hidden = true;
  $('time').hidden = true;
  say(`Error: ${run.error}`, true);
}

main().catch(report);
