"""Run the CLI in-process with captured streams, and read PNG sizes: shared by the CLI tests."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from simopt.cli import Env, main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_cli(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `simopt ARGV...`."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), Env(stdout=out, stderr=err))
    return code, out.getvalue(), err.getvalue()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file; fails when the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
