"""What a run writes, checked against what it reads before any work: no output may be one of the inputs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import NstError
from .inputs import INITS, mask_sources

Named = tuple[str, "str | os.PathLike"]


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file (symbolic and hard links followed); a missing file is nobody's."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def input_files(content, styles, options) -> list[Named]:
    """The files a transfer reads, named for messages: content, styles, an init image and style masks."""
    named: list[Named] = [("the content image", content)]
    named += [(f"style image {i + 1}", style) for i, style in enumerate(styles)]
    if isinstance(options.init, (str, os.PathLike)) and str(options.init) not in INITS:
        named.append(("the --init image", options.init))
    if options.style_masks is not None:
        named += [(f"style mask {i + 1}", m) for i, m in enumerate(mask_sources(options.style_masks)) if m is not None]
    return [(label, path) for label, path in named if isinstance(path, (str, os.PathLike))]


def refuse_inputs(outputs: Iterable[Named], inputs: list[Named]) -> None:
    """Raise NstError when any output is the same file as an input (so writing it would replace the input),
    or two outputs are one file (the later would replace the earlier)."""
    outputs = list(outputs)
    seen: dict[tuple[str, str], str] = {}
    folders: dict[str, str] = {}
    for out_label, out in outputs:
        parent, name = os.path.split(os.path.abspath(out))
        key = (folders.setdefault(parent, os.path.realpath(parent)), name)
        if key in seen:
            raise NstError(f"{Path(out)}: {out_label} is also {seen[key]}; give them different names")
        seen[key] = out_label
    for out_label, out in outputs:
        if not os.path.lexists(out):
            continue
        for in_label, source in inputs:
            if same_file(out, source):
                raise NstError(
                    f"{Path(out)}: {out_label} is also {in_label} ({Path(source)}); choose another output "
                    "name so that the input is kept"
                )
