#!/usr/bin/env python3
"""Style transfer from an nst bundle (`nst export DIR`) with onnxruntime, numpy and Pillow: nothing of nst.

    python stylize_bundle.py CONTENT STYLE [STYLE...] -o OUT --bundle DIR [--size N] [--iterations N]

Prints one JSON line per iteration: {"iteration", "loss", "seconds", ...}. The work is in nst_bundle.py beside
it (import that to embed a transfer); this file is the command line. The contract is docs/bundle.md.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np
from nst_bundle import Bundle, BundleError, first_line, load, plan, stylize
from PIL import Image

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
MAX_THREADS = 256


def fail(message: str, status: int = 2) -> None:
    """One line on stderr and exit status 2 (130 when interrupted), as the Node host does."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


def check_output(path: str, inputs: list[str]) -> None:
    """Before any work: the output's format is known, its folder takes files, and it is none of the inputs."""
    out = Path(path)
    if not path:
        fail("give -o a file name such as out.png")
    if path.endswith(("/", os.sep)):
        fail(f"{path}: give a file name, not a folder")
    if len(os.fsencode(out.name)) > 255:
        fail(f"{path}: the file name is too long; choose a shorter one")
    try:
        if out.is_dir():
            fail(f"{path} is a folder; give a file name such as {out / 'out.png'}")
        if out.suffix.lower() not in FORMATS:
            fail(f"{path}: give an output name ending in {', '.join(FORMATS)}")
        folder = out.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            fail(f"{path}: the folder {folder} does not exist or is not writable; choose another output path")
        if out.exists() and not out.is_file():
            fail(f"{path} is not a regular file (a pipe or a device); give a file name such as out.png")
        try:  # a folder that takes no new files (a system folder such as /proc) passes the access check
            fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        except OSError as exc:
            code = errno.errorcode.get(exc.errno or 0, str(exc))  # the code, as Node names it
            fail(f"{path}: the folder {folder} takes no new files ({code}); choose another output path")
        os.close(fd)
        os.unlink(probe)
        if out.exists() and any(Path(i).exists() and out.samefile(i) for i in inputs):
            fail(f"{path} is one of the inputs; write the result elsewhere")
    except OSError as exc:  # a folder name too long, a loop of links
        fail(f"{path}: cannot be used ({exc.strerror or exc}); choose another output path")


def save(path: str, x: np.ndarray) -> None:
    """Written under a new temporary name, then renamed: a finished file or none, and nothing else touched."""
    pixels = np.clip(np.floor(x[0].transpose(1, 2, 0) + 0.5), 0, 255).astype(np.uint8)
    out, tmp = Path(path), None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=out.suffix, dir=out.parent)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as a plain new file, not mkstemp's owner-only mode
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(pixels).save(f, format=FORMATS[out.suffix.lower()], quality=95)
        os.replace(tmp, out)
    except OSError as exc:
        fail(f"{path}: cannot be written ({exc.strerror or exc}); nothing was written", 1)
    finally:
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def whole_number(flag: str, text: str | None) -> int | None:
    """A flag's digits as a number; anything else (a sign, a space, a fraction) refused as the Node host does."""
    if text is None:
        return None
    if not re.fullmatch(r"[0-9]+", text):
        fail(f"{flag} needs a whole number written in digits, not {json.dumps(text)}")
    return int(text)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, as every other refusal (argparse prints the usage too)
        fail(f"{message} (--help shows the usage)")


def main(argv: list[str] | None = None) -> None:
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    p.add_argument("content")
    p.add_argument("styles", nargs="+")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--bundle", required=True)
    p.add_argument("--size")
    p.add_argument("--iterations", help="steps at every scale (default: the bundle's schedule)")
    p.add_argument("--scales", help="run only the last N scales of the schedule (1: the final size)")
    p.add_argument("--threads", default="0", help=f"0 (all cores) to {MAX_THREADS}")
    args = p.parse_args(argv)
    for flag in ("size", "iterations", "scales", "threads"):
        setattr(args, flag, whole_number(f"--{flag}", getattr(args, flag)))
    if args.threads > MAX_THREADS:
        fail(f"--threads {args.threads}: give 0 (all cores) to {MAX_THREADS}")
    check_output(args.output, [args.content, *args.styles])
    size = args.size
    try:
        bundle = Bundle(args.bundle, args.threads)
        size, scales, iterations = plan(bundle.manifest, args.size, args.scales, args.iterations)
        most = bundle.manifest["limits"]["max_pixels"]
        content, styles = load(args.content, most), [load(s, most) for s in args.styles]
        result = stylize(bundle, content, styles, size, iterations, scales, bundle.manifest["defaults"], report)
    except BundleError as exc:
        fail(str(exc))
    except Exception as exc:  # numpy's MemoryError and onnxruntime's std::bad_alloc among them
        if isinstance(exc, MemoryError) or "alloc" in first_line(exc):
            fail(f"out of memory (at size {size}): give a smaller --size or smaller images", 1)
        raise
    save(args.output, result)


def report(record: dict) -> None:
    """One JSON line per step; a reader that goes away (| head) stops the printing, not the transfer."""
    try:
        print(json.dumps(record), flush=True)
    except OSError:  # a closed pipe, a full disk
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    # Ctrl-C interrupts even when a shell started this host with SIGINT ignored (a background job), which
    # Python would otherwise inherit silently; the nst CLI does the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        main()
    except KeyboardInterrupt:
        fail("interrupted; nothing was written", 130)
