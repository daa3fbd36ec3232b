#!/usr/bin/env node
// Style transfer from an nst bundle on onnxruntime-node, nothing of nst:
//   node stylize.mjs CONTENT STYLE [STYLE...] -o OUT --bundle DIR [--size N] [--iterations N] [--scales N] [--threads N]
// Prints one JSON line per iteration ({"iteration", "loss", "seconds", ...}). Images are read and written with
// sharp (libvips): JPEG, PNG, WebP, TIFF, ...; decoded as Pillow and browsers decode them, EXIF orientation applied.
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import {
  checkPixels,
  fromCMYK,
  fromPixels,
  graphNames,
  manifestProblem,
  openBundle,
  outOfMemory,
  plan,
  stylize,
  toRGBA,
} from '../js/nst-bundle.mjs';

const USAGE =
  'usage: node stylize.mjs CONTENT STYLE [STYLE...] -o OUT --bundle DIR [--size N] [--iterations N] [--scales N] ' +
  '[--threads N]';
const MAX_THREADS = 256;
const READABLE = ['png', 'jpeg', 'webp', 'gif', 'tiff'];
const KINDS = 'give an 8- or 16-bit PNG, JPEG, WebP, GIF or TIFF image';
const FORMATS = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp', '.tif': 'tiff', '.tiff': 'tiff' };

function fail(message, status = 2) {
  console.error(`error: ${message}`);
  process.exit(status);
}

function parseArgs(argv) {
  const args = { images: [], threads: 0 };
  const numbers = { '--size': 'size', '--iterations': 'iterations', '--scales': 'lastScales', '--threads': 'threads' };
  // --flag=value (and -o=value) as --flag value, as Python's argparse takes them; after --, only file names.
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  const split = (a) => (/^(--[a-z]+|-o)=/.test(a) ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a]);
  const words = argv.slice(0, end).flatMap(split);
  for (let i = 0; i < words.length; i++) {
    const flag = words[i];
    if (flag === '-h' || flag === '--help') {
      console.log(USAGE);
      process.exit(0);
    }
    const needsValue = flag in numbers || ['-o', '--output', '--bundle'].includes(flag);
    if (needsValue && i + 1 >= words.length) fail(`${flag} needs a value (--help shows the usage)`);
    if (flag === '-o' || flag === '--output') args.output = words[++i];
    else if (flag === '--bundle') args.bundle = words[++i];
    else if (flag in numbers) {
      const text = words[++i];
      if (!/^\d+$/.test(text)) fail(`${flag} needs a whole number written in digits, not ${JSON.stringify(text)}`);
      args[numbers[flag]] = Number(text);
    } else if (flag.startsWith('-')) fail(`unknown option ${flag} (--help shows the usage)`);
    else args.images.push(flag);
  }
  args.images.push(...argv.slice(end + 1));
  if (args.images.length < 2 || !args.output || !args.bundle) {
    fail('give a content, a style, -o OUT and --bundle DIR (--help shows the usage)');
  }
  if (args.threads > MAX_THREADS) fail(`--threads ${args.threads}: give 0 (all cores) to ${MAX_THREADS}`);
  return args;
}

// Before any work: the output's format is known, its folder takes files, and it is none of the inputs.
function checkOutput(output, inputs) {
  if (/[\\/]$/.test(output)) fail(`${output}: give a file name, not a folder`);
  const long = Buffer.byteLength(basename(output)) > 255;
  if (long) fail(`${output}: the file name is too long; choose a shorter one`);
  if (isFolder(output)) fail(`${output} is a folder; give a file name such as ${join(output, 'out.png')}`);
  if (!(extname(output).toLowerCase() in FORMATS)) {
    fail(`${output}: give an output name ending in ${Object.keys(FORMATS).join(', ')}`);
  }
  const folder = dirname(output);
  try {
    if (!statSync(folder).isDirectory()) throw new Error();
    accessSync(folder, constants.W_OK);
  } catch {
    fail(`${output}: the folder ${folder} does not exist or is not writable; choose another output path`);
  }
  if (existsSync(output) && !statSync(output).isFile()) {
    fail(`${output} is not a regular file (a pipe or a device); give a file name such as out.png`);
  }
  // A folder that takes no new files (a system folder such as /proc) passes the access check.
  const probe = join(folder, `.probe-${randomBytes(6).toString('hex')}`);
  try {
    writeFileSync(probe, '', { flag: 'wx' });
    unlinkSync(probe);
  } catch (err) {
    fail(`${output}: the folder ${folder} takes no new files (${err.code || err.message}); choose another output path`);
  }
  const id = (path) => {
    try {
      const { dev, ino } = statSync(path);
      return `${dev}:${ino}`;
    } catch {
      return null;
    }
  };
  const out = id(output);
  if (out && inputs.some((path) => id(path) === out)) {
    fail(`${output} is one of the inputs; write the result elsewhere`);
  }
}

const isFile = (path) => {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

const isFolder = (path) => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

// As Pillow, OpenCV and Chromium (colorSpaceConversion none) read files: the stored values, no ICC transform;
// CMYK by plain inversion; transparency composited on white (in fromPixels).
async function decode(path, manifest) {
  // A pipe would block the read (a missing file: sharp says so below).
  if (existsSync(path) && !isFile(path)) fail(`${path}: not a regular file (a folder, pipe or device); ${KINDS}`);
  try {
    const open = () => sharp(path, { failOn: 'error', limitInputPixels: false }).autoOrient();
    const { width, height, space, format, depth } = await open().metadata();
    checkPixels(manifest, path, width, height);
    if (!READABLE.includes(format) || !['uchar', 'char', 'ushort', 'short'].includes(depth)) {
      throw new Error(`${path}: cannot be read as an image (${format} ${depth}); ${KINDS}`);
    }
    if (space === 'cmyk') {
      const cmyk = open().pipelineColourspace('cmyk').toColourspace('cmyk');
      const { data, info } = await cmyk.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      return fromCMYK(data, info.height, info.width);
    }
    const rgba = open().keepIccProfile().toColourspace('srgb').ensureAlpha();
    const { data, info } = await rgba.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return fromPixels(data, info.height, info.width, info.channels);
  } catch (err) {
    if (outOfMemory(err)) fail(`out of memory reading ${path}: give a smaller --size or smaller images`, 1);
    if (err.message.startsWith(`${path}: `)) fail(err.message);
    fail(`${path}: cannot be read as an image (${err.message.split('\n')[0]}); ${KINDS}`);
  }
}

async function encode(path, img) {
  const rgba = Buffer.from(toRGBA(img).buffer);
  const format = FORMATS[extname(path).toLowerCase()];
  const image = sharp(rgba, { raw: { width: img.w, height: img.h, channels: 4 } }).removeAlpha();
  const options = { jpeg: { quality: 95 }, webp: { quality: 95 }, tiff: { compression: 'lzw' } }; // TIFF lossless
  return image.toFormat(format, options[format] ?? {}).toBuffer();
}

// One file of the bundle; a pipe or device is refused unread (it would block), a missing one named.
function readPart(folder, name) {
  const path = join(folder, name);
  try {
    if (existsSync(path) && !isFile(path)) throw new Error(`${name} is not a regular file`);
    return readFileSync(path);
  } catch (err) {
    fail(`${folder} is not a readable bundle (${err.code || err.message}); run nst export ${folder}`);
  }
}

// The manifest (checked) first, then the graphs it names.
function readBundle(folder) {
  const files = {};
  const text = readPart(folder, 'manifest.json').toString('utf8');
  let problem;
  try {
    files.manifest = JSON.parse(text);
    problem = manifestProblem(files.manifest);
  } catch {
    problem = 'it is not valid JSON';
  }
  const again = 'export the bundle again with nst export';
  if (problem) fail(`${join(folder, 'manifest.json')} is damaged (${problem}): ${again}`);
  for (const name of graphNames(files.manifest)) files[name] = readPart(folder, name);
  return files;
}

// Written under a new temporary name, then renamed: a finished file or none, and nothing else touched.
function write(output, bytes) {
  partial = join(dirname(output), `.part-${randomBytes(6).toString('hex')}${extname(output)}`);
  try {
    writeFileSync(partial, bytes, { flag: 'wx' });
    renameSync(partial, output);
    partial = null;
  } catch (err) {
    try {
      if (err.code !== 'EEXIST') unlinkSync(partial);
    } catch {}
    fail(`${output}: cannot be written (${err.code || err.message}); nothing was written`, 1);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  checkOutput(args.output, args.images);
  const files = readBundle(args.bundle);
  const todo = plan(files.manifest, args);
  // Recent onnxruntime builds otherwise keep a device id under ~/.cache and send usage events; 0 allows them.
  process.env.ORT_DISABLE_TELEMETRY ||= '1'; // read when the first session is made
  const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
  const options = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: args.threads,
    logSeverityLevel: 4, // errors reach us as exceptions, not as log lines on stderr
    extra: { session: { intra_op: { allow_spinning: '0' } } }, // idle threads sleep: fairer on a busy machine
  };
  const bundle = await openBundle(ort, files, options, sha256).catch((err) => {
    const again = /export/.test(err.message) ? '' : '; export the bundle again with nst export';
    fail(`${args.bundle}: ${err.message.split('\n')[0]}${again}`);
  });
  const images = [];
  for (const path of args.images) images.push(await decode(path, files.manifest)); // the first bad one named
  const [content, ...styles] = images;
  let printing = true; // a reader that goes away (| head) stops the printing, not the transfer
  process.stdout.on('error', () => (printing = false));
  const result = await stylize(bundle, content, styles, {
    ...todo,
    settings: files.manifest.defaults,
    onStep: (record) => printing && console.log(JSON.stringify(record)),
  }).catch((err) => {
    if (outOfMemory(err)) fail(`out of memory (at size ${todo.size}): give a smaller --size or smaller images`, 1);
    throw err;
  });
  write(args.output, await encode(args.output, result));
}

let partial = null;
process.on('SIGINT', () => {
  try {
    if (partial) unlinkSync(partial);
  } catch {}
  fail('interrupted; nothing was written', 130);
});
main().catch((err) => fail(err.message.split('\n')[0]));
