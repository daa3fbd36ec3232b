#!/usr/bin/env node
// Style transfer from an nst bundle on onnxruntime-node, nothing of nst:
//   node stylize.mjs CONTENT STYLE [STYLE...] -o OUT --bundle DIR [--size N] [--iterations N] [--scales N] [--threads N]
// Prints one JSON line per iteration ({"iteration", "loss", "seconds", ...}); PNG and JPEG in and out.
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import jpeg from 'jpeg-js';
import * as ort from 'onnxruntime-node';
import pngjs from 'pngjs';
import { fromPixels, openBundle, schedule, stylize, toRGBA } from '../js/nst-bundle.mjs';

const USAGE = 'usage: node stylize.mjs CONTENT STYLE [STYLE...] -o OUT --bundle DIR [--size N] [--iterations N]';

function fail(message) {
  console.error(`error: ${message}`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { images: [], threads: 0 };
  const numbers = new Set(['--size', '--iterations', '--scales', '--threads']);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '-o' || flag === '--output') args.output = argv[++i];
    else if (flag === '--bundle') args.bundle = argv[++i];
    else if (numbers.has(flag)) {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 0) fail(`${flag} needs a whole number, not ${argv[i]}`);
      args[flag.slice(2)] = value;
    } else if (flag.startsWith('-')) fail(`unknown option ${flag}\n${USAGE}`);
    else args.images.push(flag);
  }
  if (args.images.length < 2 || !args.output || !args.bundle) fail(`give a content, a style, -o and --bundle\n${USAGE}`);
  return args;
}

function decode(path) {
  let bytes;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    fail(`${path}: cannot be read (${err.code})`);
  }
  if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    const png = pngjs.PNG.sync.read(bytes);
    return fromPixels(png.data, png.height, png.width);
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const jpg = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
    return fromPixels(jpg.data, jpg.height, jpg.width);
  }
  fail(`${path}: not a PNG or JPEG image`);
}

function encode(path, img) {
  const rgba = Buffer.from(toRGBA(img).buffer);
  const ext = extname(path).toLowerCase();
  if (ext === '.png') {
    const png = new pngjs.PNG({ width: img.w, height: img.h });
    rgba.copy(png.data);
    return pngjs.PNG.sync.write(png);
  }
  if (ext === '.jpg' || ext === '.jpeg') return jpeg.encode({ data: rgba, width: img.w, height: img.h }, 95).data;
  fail(`${path}: write .png, .jpg or .jpeg`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  encode(args.output, { data: new Float32Array(3), h: 1, w: 1 }); // an unwritable format fails before the run
  const files = {};
  try {
    files.manifest = JSON.parse(readFileSync(join(args.bundle, 'manifest.json'), 'utf8'));
    for (const name of ['features.onnx', 'step.onnx']) files[name] = readFileSync(join(args.bundle, name));
  } catch (err) {
    fail(`${args.bundle} is not a readable bundle (${err.code || err.message}); run nst export ${args.bundle}`);
  }
  const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
  const options = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    extra: { session: { intra_op: { allow_spinning: '0' } } }, // idle threads sleep: fairer on a busy machine
  };
  const bundle = await openBundle(ort, files, options, sha256);
  const [content, ...styles] = args.images.map(decode);
  const { defaults } = files.manifest;
  const result = await stylize(bundle, content, styles, {
    size: args.size || defaults.size,
    ...schedule(files.manifest, args.scales, args.iterations),
    settings: defaults,
    onStep: (record) => console.log(JSON.stringify(record)),
  });
  const temp = join(dirname(args.output), `.part-${basename(args.output)}`);
  writeFileSync(temp, encode(args.output, result));
  renameSync(temp, args.output); // a finished file or none
}

main().catch((err) => fail(err.message.split('\n')[0]));
