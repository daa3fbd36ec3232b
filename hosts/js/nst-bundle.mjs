// Style transfer with an nst bundle (docs/bundle.md) on any ONNX Runtime for JavaScript: onnxruntime-node
// (hosts/node) and onnxruntime-web (hosts/web) pass their `ort` module in. Images are {data, h, w} with data a
// Float32Array of 3*h*w RGB values in 0..255, channel after channel (the graphs' NCHW layout).

const SCALARS = ['lr', 'content_weight', 'style_weight', 'tv_weight'];

// (nOut, nIn) weights of a triangle filter widened when shrinking: the Python host computes the same.
function resizeMatrix(nIn, nOut) {
  const scale = nIn / nOut;
  const support = Math.max(scale, 1);
  const weights = new Float64Array(nOut * nIn);
  for (let i = 0; i < nOut; i++) {
    const centre = (i + 0.5) * scale - 0.5;
    let total = 0;
    for (let j = 0; j < nIn; j++) {
      const tap = Math.max(0, 1 - Math.abs(j - centre) / support);
      weights[i * nIn + j] = tap;
      total += tap;
    }
    for (let j = 0; j < nIn; j++) weights[i * nIn + j] /= total;
  }
  return weights;
}

export function resize(img, h, w) {
  const rows = resizeMatrix(img.h, h);
  const cols = resizeMatrix(img.w, w);
  const out = new Float32Array(3 * h * w);
  const tmp = new Float64Array(h * img.w);
  for (let c = 0; c < 3; c++) {
    const src = img.data.subarray(c * img.h * img.w, (c + 1) * img.h * img.w);
    tmp.fill(0);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < img.h; j++) {
        const weight = rows[i * img.h + j];
        if (weight === 0) continue;
        for (let k = 0; k < img.w; k++) tmp[i * img.w + k] += weight * src[j * img.w + k];
      }
    }
    for (let i = 0; i < h; i++) {
      for (let l = 0; l < w; l++) {
        let sum = 0;
        for (let k = 0; k < img.w; k++) sum += tmp[i * img.w + k] * cols[l * img.w + k];
        out[c * h * w + i * w + l] = sum;
      }
    }
  }
  return { data: out, h, w };
}

// Python's round differs at .5 (to even): both hosts use floor(x + 0.5).
const roundHalfUp = (x) => Math.floor(x + 0.5);

// [h, w] with the longest side `longest`, aspect ratio kept.
export function fitSize(img, longest) {
  const scale = longest / Math.max(img.h, img.w);
  return [Math.max(1, roundHalfUp(img.h * scale)), Math.max(1, roundHalfUp(img.w * scale))];
}

export function fit(img, longest) {
  return resize(img, ...fitSize(img, longest));
}

const MAX_ITERATIONS = 1e6; // per scale: a bound that no schedule reaches, against typing mistakes
const whole = (x, lo, hi) => Number.isInteger(x) && x >= lo && x <= hi;
const FLOAT32_MAX = 3.4028234663852886e38; // weights beyond it become infinite in the graphs
const finite = (x) => typeof x === 'number' && Number.isFinite(x);

// What is wrong with the parts of manifest.json a host relies on, or null: checked by plan() and openBundle(),
// the two ways in, so that a damaged file is named rather than failing later. The Python host checks the same.
export function manifestProblem(m) {
  if (m?.format !== 'nst-bundle' || m.version !== 1) return 'it is not an nst bundle of version 1';
  if (!(m.files instanceof Object) || Array.isArray(m.files)) return 'files is not a table of hashes';
  const table = (t) => t instanceof Object && !Array.isArray(t);
  const layers = [m.content_layers, m.style_layers];
  if (!layers.every(table) || !layers.some((t) => Object.keys(t).length)) {
    return 'content_layers and style_layers are not tables of layer names';
  }
  const { min_side: lo, max_side: hi, max_pixels: most } = m.limits ?? {};
  if (!whole(lo, 32, 65536) || !whole(hi, lo, 65536) || !whole(most, hi * hi, 2 ** 50)) {
    return 'limits lack min_side, max_side or max_pixels, or they are out of order';
  }
  const d = m.defaults ?? {};
  const weights = ['lr', 'content_weight', 'style_weight', 'tv_weight'];
  if (!weights.every((k) => finite(d[k]) && d[k] >= 0 && d[k] <= FLOAT32_MAX) || !(d.lr > 0)) {
    return 'defaults lack lr or a weight, or one is negative';
  }
  if (!Array.isArray(d.scales) || !d.scales.length || !d.scales.every((f) => finite(f) && f > 0 && f <= 1)) {
    return 'defaults.scales are not fractions of the size in (0, 1]';
  }
  if (!Array.isArray(d.iterations) || d.iterations.length !== d.scales.length) {
    return 'defaults.iterations do not give one count per scale';
  }
  if (!d.iterations.every((n) => whole(n, 1, MAX_ITERATIONS))) {
    return `defaults.iterations are not in 1..${MAX_ITERATIONS}`;
  }
  if (!whole(d.size, lo, hi)) return `defaults.size is not in ${lo}..${hi}`;
  if (typeof (d.detail ?? true) !== 'boolean') return 'defaults.detail is not true or false';
  if (typeof (d.style_at_final ?? false) !== 'boolean') return 'defaults.style_at_final is not true or false';
  return m.style_loss === 'nn' ? nnProblem(m) : null;
}

// What an nn bundle's manifest lacks: alpha in 0..1 and the matching's block size (the Python host checks the same).
function nnProblem(m) {
  const alpha = m.defaults.alpha;
  if (!(finite(alpha) && alpha >= 0 && alpha <= 1)) return 'defaults.alpha is not a number in 0..1';
  if (!whole(m.limits.block_bytes, 2 ** 20, 2 ** 40)) return 'limits.block_bytes is not a whole number of bytes from 1 MiB';
  return null;
}

// The graphs a bundle holds: features and step, and for the nn style loss its style columns and matching.
export function graphNames(m) {
  const nn = m.style_loss === 'nn' ? ['style_columns.onnx', 'matching.onnx'] : [];
  return ['features.onnx', 'step.onnx', ...nn];
}

const STEP_OUTPUTS = ['image_next', 'm_next', 'v_next', 'loss', 'content_loss', 'style_loss', 'tv_loss'];
const NN_TARGETS = ['nn.style', 'nn.centre', 'nn.index'];

// What a graph's inputs and outputs lack, or hold beyond, what the manifest's layers call for (a graph of
// another version), or null. The Python host checks the same.
export function interfaceProblem(m, name, inputs, outputs) {
  const content = Object.keys(m.content_layers).map((k) => `content.${k}`);
  const nn = m.style_loss === 'nn';
  const targets = [...content, ...(nn ? NN_TARGETS : Object.keys(m.style_layers).map((k) => `gram.${k}`))];
  const [wantIn, wantOut] = {
    'features.onnx': [['image'], nn ? [...content, 'nn.columns'] : targets],
    'step.onnx': [['image', 'm', 'v', 't', ...SCALARS, ...targets], STEP_OUTPUTS],
    'style_columns.onnx': [['columns'], ['style', 'centre']],
    'matching.onnx': [['rows', 'style', 'centre'], ['index', 'distance']],
  }[name];
  const missing = [...wantIn.filter((k) => !inputs.includes(k)).map((k) => `input ${k}`),
    ...wantOut.filter((k) => !outputs.includes(k)).map((k) => `output ${k}`)];
  const extra = inputs.filter((k) => !wantIn.includes(k)).map((k) => `input ${k}`);
  if (missing.length) return `it has no ${missing[0]}`;
  return extra.length ? `it has an unknown ${extra[0]}` : null;
}

function checkManifest(m) {
  const problem = manifestProblem(m);
  if (problem) throw new Error(`manifest.json is damaged (${problem}): export the bundle again with nst export`);
}

// The sessions and the manifest; `files` holds the manifest object and the bytes of the graphs graphNames()
// lists, `sha256(bytes)` returns a hex digest (each host has its own), checked against the manifest.
export async function openBundle(ort, files, sessionOptions, sha256) {
  const manifest = files.manifest;
  checkManifest(manifest);
  const sessions = {};
  for (const name of graphNames(manifest)) {
    if (sha256 && (await sha256(files[name])) !== manifest.files[name]) {
      throw new Error(`${name} does not match manifest.json; export the bundle again`);
    }
    sessions[name] = await ort.InferenceSession.create(files[name], sessionOptions);
    const problem = interfaceProblem(manifest, name, sessions[name].inputNames, sessions[name].outputNames);
    if (problem) throw new Error(`${name} does not fit manifest.json (${problem}); export the bundle again`);
  }
  const [features, step, styleColumns, matching] = graphNames(manifest).map((name) => sessions[name]);
  return { ort, manifest, features, step, styleColumns, matching };
}

const imageTensor = (ort, img) => new ort.Tensor('float32', img.data, [1, 3, img.h, img.w]);
const scalar = (ort, value) => new ort.Tensor('float32', new Float32Array([value]), []);

// content.* of the content image; gram.* of the styles averaged with the blend weights.
export async function targets(bundle, content, styles, blend) {
  const feeds = {};
  const out = await bundle.features.run({ image: imageTensor(bundle.ort, content) });
  for (const [name, t] of Object.entries(out)) if (name.startsWith('content.')) feeds[name] = t;
  for (let s = 0; s < styles.length; s++) {
    const grams = await bundle.features.run({ image: imageTensor(bundle.ort, styles[s]) });
    for (const [name, t] of Object.entries(grams)) {
      if (!name.startsWith('gram.')) continue;
      const sum = feeds[name] ? feeds[name].data : new Float32Array(t.data.length);
      for (let i = 0; i < sum.length; i++) sum[i] += Math.fround(blend[s]) * t.data[i];
      feeds[name] = new bundle.ort.Tensor('float32', sum, t.dims);
    }
  }
  return feeds;
}

// The (positions, channels) hypercolumns of an image, position after position.
async function columnsOf(bundle, img) {
  return (await bundle.features.run({ image: imageTensor(bundle.ort, img) }, ['nn.columns']))['nn.columns'];
}

// content.* of the content image and, for the nn loss, the style columns (every style's positions pooled), their
// centre and each position's match in alpha x content + (1 - alpha) x start, matched a block of positions at a
// time so the (positions x style positions) distances never exist whole; the query's columns are centred by
// their own mean (as the engine's Matcher).
export async function nnTargets(bundle, content, styles, start) {
  const { ort, manifest } = bundle;
  const names = bundle.features.outputNames.filter((name) => name.startsWith('content.'));
  const feeds = names.length ? await bundle.features.run({ image: imageTensor(ort, content) }, names) : {};
  const parts = [];
  for (const img of styles) parts.push(await columnsOf(bundle, img));
  const width = parts[0].dims[1];
  const rows = new Float32Array(parts.reduce((n, t) => n + t.data.length, 0));
  parts.reduce((offset, t) => (rows.set(t.data, offset), offset + t.data.length), 0);
  const columns = new ort.Tensor('float32', rows, [rows.length / width, width]);
  const { style, centre } = await bundle.styleColumns.run({ columns });
  const [a, b] = [Math.fround(manifest.defaults.alpha), Math.fround(1 - manifest.defaults.alpha)];
  const blend = new Float32Array(content.data.length); // float32 arithmetic, as the engine blends
  for (let i = 0; i < blend.length; i++) blend[i] = Math.fround(a * content.data[i]) + Math.fround(b * start.data[i]);
  const query = await columnsOf(bundle, { data: blend, h: content.h, w: content.w });
  const [positions, channels] = query.dims;
  const block = Math.max(1, Math.floor(manifest.limits.block_bytes / (4 * Math.max(channels, style.dims[0]))));
  const sums = new Float64Array(channels);
  for (let p = 0; p < positions; p++) for (let c = 0; c < channels; c++) sums[c] += query.data[p * channels + c];
  const mean = new ort.Tensor('float32', Float32Array.from(sums, (v) => v / positions), [1, channels]);
  const index = new BigInt64Array(positions);
  for (let p = 0; p < positions; p += block) {
    const n = Math.min(block, positions - p);
    const part = new ort.Tensor('float32', query.data.slice(p * channels, (p + n) * channels), [n, channels]);
    index.set((await bundle.matching.run({ rows: part, style, centre: mean }, ['index'])).index.data, p);
  }
  return { ...feeds, 'nn.style': style, 'nn.centre': centre, 'nn.index': new ort.Tensor('int64', index, [positions]) };
}

// Process CPU time where the platform tells it (Node): a busy machine stretches wall time, not this.
function cpuSeconds() {
  if (typeof process === 'undefined' || !process.cpuUsage) return {};
  const { user, system } = process.cpuUsage();
  return { cpu_seconds: (user + system) / 1e6 };
}

// A finer scale's start: the coarser result enlarged, plus (with `detail`) the content's detail it could not hold.
function nextStart(x, c, detail) {
  const up = resize(x, c.h, c.w);
  if (!detail) return up;
  const low = resize(resize(c, x.h, x.w), c.h, c.w);
  const data = new Float32Array(up.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(255, Math.max(0, up.data[i] + c.data[i] - low.data[i]));
  return { data, h: c.h, w: c.w };
}

// Adam from the content image, coarse to fine; for the nn style loss each scale first matches the positions of
// alpha x content + (1 - alpha) x its first image. `onStep(record, image)` runs after every step (record: iteration,
// loss, seconds, size and the three terms; image: the image the losses belong to); returning true stops.
export async function stylize(bundle, content, styles, { size, iterations, scales, settings, onStep }) {
  const { ort } = bundle;
  if (!Array.isArray(styles) || !styles.length) throw new Error('give at least one style image');
  const named = styles.length === 1 ? { style: styles[0] } : Object.fromEntries(styles.map((s, i) => [`style ${i + 1}`, s]));
  for (const [what, img] of Object.entries({ content, ...named })) checkImage(what, img);
  checkSides(bundle.manifest, { content, ...named }, size);
  const blend = styles.map(() => 1 / styles.length);
  const start = performance.now();
  const nn = bundle.manifest.style_loss === 'nn';
  const detail = bundle.manifest.defaults.detail ?? true;
  const atFinal = bundle.manifest.defaults.style_at_final ?? false;
  let x = null;
  let step = 0;
  for (const { side, iterations: count } of scalePlan(bundle.manifest, [content, ...styles], size, scales, iterations)) {
    const c = fit(content, side);
    x = x === null ? c : nextStart(x, c, detail);
    const resized = styles.map((img) => fit(img, atFinal ? size : side));
    const feeds = nn ? await nnTargets(bundle, c, resized, x) : await targets(bundle, c, resized, blend);
    for (const name of SCALARS) feeds[name] = scalar(ort, settings[name]);
    let image = imageTensor(ort, x);
    let m = new ort.Tensor('float32', new Float32Array(x.data.length), image.dims);
    let v = new ort.Tensor('float32', new Float32Array(x.data.length), image.dims);
    for (let t = 1; t <= count; t++) {
      const out = await bundle.step.run({ ...feeds, image, m, v, t: scalar(ort, t) });
      checkFinite(step, Number(out.loss.data[0]), out.image_next.data);
      const record = {
        iteration: step++,
        loss: Number(out.loss.data[0]),
        seconds: Math.round(performance.now() - start) / 1000,
        ...cpuSeconds(),
        size: side,
        content_loss: Number(out.content_loss.data[0]),
        style_loss: Number(out.style_loss.data[0]),
        tv_loss: Number(out.tv_loss.data[0]),
      };
      const stop = await onStep(record, { data: image.data, h: c.h, w: c.w });
      [image, m, v] = [out.image_next, out.m_next, out.v_next];
      x = { data: image.data, h: c.h, w: c.w };
      if (stop) return x;
    }
  }
  return x;
}

// An image as the hosts read it: {data, h, w} with 3*h*w finite RGB values in 0..255.
function checkImage(what, img) {
  const ok = img?.data instanceof Float32Array && whole(img.h, 1, Infinity) && whole(img.w, 1, Infinity);
  if (!ok || img.data.length !== 3 * img.h * img.w) {
    throw new Error(`the ${what} image is not {data, h, w} with 3*h*w float32 values, as the hosts read images`);
  }
  if (!img.data.every((x) => x >= 0 && x <= 255)) {
    throw new Error(`the ${what} image holds values outside 0..255 (or NaN): give RGB values in 0..255`);
  }
}

// Stop on a loss or image that overflowed (weights too large for float32), as nst does: the image would come
// out black.
function checkFinite(step, loss, image) {
  if (!Number.isFinite(loss) || !image.every(Number.isFinite)) {
    throw new Error(`the loss is not finite at step ${step}: the weights in manifest.json's defaults are too large ` +
      'for float32; lower them, or export the bundle again');
  }
}

// An error that means the runtime or JavaScript ran out of memory (hosts say so, and to choose a smaller size).
export const outOfMemory = (err) =>
  /bad_alloc|out of memory|allocation failed|failed to allocate|invalid typed array length/i.test(
    String(err?.message ?? err),
  );

// (1, 3, H, W) float -> RGBA bytes, rounded as the Python host rounds.
export function toRGBA(img) {
  const n = img.h * img.w;
  const rgba = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) rgba[4 * i + c] = Math.min(255, Math.max(0, Math.floor(img.data[c * n + i] + 0.5)));
    rgba[4 * i + 3] = 255;
  }
  return rgba;
}

// RGBA (or RGB with channels=3) bytes -> image; transparency composited on white, as nst reads images. The
// Python host computes the same doubles in the same order, so both give the same float32 pixels.
export function fromPixels(pixels, h, w, channels = 4) {
  const n = h * w;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const a = channels === 4 ? pixels[4 * i + 3] : 255;
    for (let c = 0; c < 3; c++) data[c * n + i] = (pixels[channels * i + c] * a + 255 * (255 - a)) / 255;
  }
  return { data, h, w };
}

// CMYK bytes (as stored, 0 = no ink) -> image by the plain inversion that Chromium, OpenCV and the Python host
// use; colour management would need the print profile, which few files carry.
export function fromCMYK(pixels, h, w) {
  const n = h * w;
  const data = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) data[c * n + i] = ((255 - pixels[4 * i + c]) * (255 - pixels[4 * i + 3])) / 255;
  }
  return { data, h, w };
}

// What a host was asked for, checked against the bundle before any work: {size, scales, iterations}. `size`,
// `lastScales` (run only the last N scales) and `iterations` (steps at every scale) are optional; given, each
// must be a whole number in range, or this throws a one-line error that says what to give instead.
export function plan(manifest, { size, lastScales, iterations } = {}) {
  checkManifest(manifest);
  const { min_side: lo, max_side: hi } = manifest.limits;
  let { scales, iterations: counts, size: fallback } = manifest.defaults;
  if (size === undefined) size = fallback;
  else if (!whole(size, lo, hi)) throw new Error(`size ${size}: give a whole number of pixels in ${lo}..${hi}`);
  if (lastScales !== undefined) {
    if (!whole(lastScales, 1, scales.length)) throw new Error(`scales ${lastScales}: give 1..${scales.length}`);
    [scales, counts] = [scales.slice(-lastScales), counts.slice(-lastScales)];
  }
  if (iterations !== undefined) {
    if (!whole(iterations, 1, MAX_ITERATIONS)) throw new Error(`iterations ${iterations}: give 1..${MAX_ITERATIONS}`);
    counts = scales.map(() => iterations);
  }
  return { size, scales, iterations: counts };
}

// {side, iterations} of each scale that runs: scales that come out the same size as the next one are left out,
// as nst's own schedule does (the later one's iterations kept). Pages weigh their progress by it.
export function scalePlan(manifest, images, size, scales, iterations) {
  const sides = scales.map((f) => scaleSide(manifest, images, size, f));
  return sides.flatMap((side, k) => (k + 1 === sides.length || sides[k + 1] !== side ? [{ side, iterations: iterations[k] }] : []));
}

// The longest side at one scale: size * fraction, at least twice min_side (nst's own floor, 64 px) and raised
// where a coarse scale would leave an image under min_side px on its short side (the network's poolings need
// them), up to the final size.
function scaleSide(manifest, images, size, fraction) {
  const lo = manifest.limits.min_side;
  let side = Math.min(size, Math.max(2 * lo, roundHalfUp(size * fraction)));
  while (side < size && images.some((img) => Math.min(...fitSize(img, side)) < lo)) side++;
  return side;
}

// An image of w x h pixels may be read: throws a one-line error naming it when it exceeds the bundle's limit.
export function checkPixels(manifest, what, w, h) {
  const { max_pixels: most } = manifest.limits;
  if (w * h > most) {
    throw new Error(`${what}: the image is ${w}x${h}, over ${Math.floor(most / 1e6)} megapixels; shrink it first`);
  }
}

// Every image must keep min_side px on its short side at the final size: throws naming the image and a size
// that would do.
export function checkSides(manifest, images, size) {
  const { min_side: lo, max_side: hi } = manifest.limits;
  for (const [what, img] of Object.entries(images)) {
    const [h, w] = fitSize(img, size);
    if (Math.min(h, w) >= lo) continue;
    let need = size + 1;
    while (need <= hi && Math.min(...fitSize(img, need)) < lo) need++;
    const fix = need <= hi ? `give a size of ${need} or more` : `crop it to at most ${Math.floor(hi / lo)}:1`;
    throw new Error(`the ${what} image is ${img.w}x${img.h}: at size ${size} it would be ${w}x${h}, under the ${lo} px ` +
      `the network needs on each side; ${fix}`);
  }
}
