"""The bundle's default schedule (Adam, coarse to fine, run by the Python host) against the `nst` preset: the
johnson loss of each final image, on the pairs of nst_vs_johnson.py, both run in this process side by side.

Target (issue 12): the bundle's johnson loss at most 1.15x the nst preset's at 512 px.

    python -m benchmarks.bundle_quality --size 512             # three pairs: long on 2 cores
    python -m benchmarks.bundle_quality --size 256 --pairs 1   # a quick look
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time

from benchmarks.images import add_images_option, image
from benchmarks.nst_vs_johnson import PAIRS, ROOT, score

HOST = ROOT / "hosts" / "python" / "stylize_bundle.py"


def python_host():
    """hosts/python/stylize_bundle.py as a module (it is a script, not part of the nst package)."""
    spec = importlib.util.spec_from_file_location("stylize_bundle", HOST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bundle_run(host, bundle, content: str, style: str, size: int) -> tuple:
    """The bundle's default schedule on one pair: (HxWx3 float image, seconds)."""
    defaults = bundle.manifest["defaults"]
    start = time.perf_counter()
    x = host.stylize(
        bundle,
        host.load(content),
        [host.load(style)],
        size,
        defaults["iterations"],
        defaults["scales"],
        defaults,
        on_step=lambda record: None,
    )
    return x[0].transpose(1, 2, 0).clip(0, 255), time.perf_counter() - start


def main() -> None:
    from nst.engine import StyleTransfer
    from nst.engine.bundle import export_folder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=len(PAIRS))
    add_images_option(parser)
    args = parser.parse_args()
    st = StyleTransfer(threads=args.threads)
    host = python_host()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        export_folder(folder)
        bundle = host.Bundle(folder, args.threads)
        for content_name, style_name in PAIRS[: args.pairs]:
            content, style = (str(image(args.images, f"{name}.jpg")) for name in (content_name, style_name))
            image, seconds = bundle_run(host, bundle, content, style, args.size)
            start = time.perf_counter()
            nst = st.transfer(content, [style], preset="nst", size=args.size)
            nst_seconds = time.perf_counter() - start
            row = {
                "content": content_name,
                "style": style_name,
                "bundle_seconds": round(seconds, 1),
                "nst_seconds": round(nst_seconds, 1),
                "bundle_johnson_loss": round(score(st, content, style, image, args.size), 1),
                "nst_johnson_loss": round(score(st, content, style, nst.astype("float32"), args.size), 1),
            }
            row["loss_ratio"] = round(row["bundle_johnson_loss"] / row["nst_johnson_loss"], 4)
            print(json.dumps(row), flush=True)
            rows.append(row)
        result = {"size": args.size, "threads": args.threads, "schedule": bundle.manifest["defaults"], "pairs": rows}
        result["worst_loss_ratio"] = max(r["loss_ratio"] for r in rows)
        result["date"] = time.strftime("%Y-%m-%d")
        out = ROOT / "benchmarks" / "results" / f"bundle_quality_{args.size}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
