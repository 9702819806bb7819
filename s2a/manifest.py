"""Weights integrity: `manifest.json` lists the SHA-256 and size of every weights file.

    python -m s2a.manifest write weights/     # after an export (training.export does it)
    python -m s2a.manifest verify weights/    # exit 0 when every listed file is intact

The manifest covers every file under the folder except `manifest.json` itself, the
`README.md` model card (documentation, edited on the Hub's web page or locally without
touching the weights) and hidden files (`.gitattributes`, `.cache/`). Files not listed
(notes, training runs) are ignored on verification. A listed file that is missing,
truncated (size differs) or altered (hash differs) is a ValueError naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"
FORMAT = "sketch2anime-weights-manifest"
VERSION = 1
UNLISTED = {MANIFEST, "README.md"}
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def listed_files(folder: str | Path) -> list[str]:
    """The files of `folder` a manifest covers, as sorted relative POSIX paths."""
    folder = Path(folder)
    names = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        name = relative.as_posix()
        if name not in UNLISTED:
            names.append(name)
    return sorted(names)


def write_manifest(folder: str | Path) -> Path:
    """Write `folder`/manifest.json (size and SHA-256 of every covered file); return its path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"No weights folder at {folder}.")
    files = {}
    for name in listed_files(folder):
        path = folder / name
        files[name] = {"size": path.stat().st_size, "sha256": sha256_of(path)}
    manifest = {"format": FORMAT, "version": VERSION, "algorithm": "sha256", "files": files}
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(folder: str | Path) -> dict[str, dict]:
    """The {relative path: {"size", "sha256"}} entries of `folder`/manifest.json, checked."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ValueError(f"{path} is missing: write it with `python -m s2a.manifest write "
                         f"{folder}`, or export the weights again.") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable manifest ({type(error).__name__}): "
                         "download or export the weights again.") from error
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT
            or manifest.get("version") != VERSION or not isinstance(files, dict)):
        raise ValueError(f"{path} is not a Sketch2Anime weights manifest (version {VERSION}).")
    for name, entry in files.items():
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or "\\" in name or not name:
            raise ValueError(f"{path} lists an unsafe path {name!r}: download the weights again.")
        if (not isinstance(entry, dict) or not isinstance(entry.get("size"), int)
                or not isinstance(entry.get("sha256"), str)):
            raise ValueError(f"{path} has a malformed entry for {name}.")
    return files


def verify_manifest(folder: str | Path) -> None:
    """Check every file listed in `folder`/manifest.json: present, same size, same SHA-256.

    Raises ValueError naming the first file that is missing, truncated or altered (sizes are
    checked for all files before any is hashed, so a missing file is reported at once).
    """
    folder = Path(folder)
    files = read_manifest(folder)
    again = "download the weights again (or re-export them)"
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            raise ValueError(f"Weights file {name} is missing from {folder}: {again}.")
        size = path.stat().st_size
        if size != entry["size"]:
            raise ValueError(f"Weights file {name} in {folder} is truncated or altered: "
                             f"{size} bytes, the manifest says {entry['size']}; {again}.")
    for name, entry in files.items():
        if sha256_of(folder / name) != entry["sha256"]:
            raise ValueError(f"Weights file {name} in {folder} is altered: its SHA-256 differs "
                             f"from the manifest's; {again}.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("write", "verify"))
    parser.add_argument("folder", help="weights folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "write":
            path = write_manifest(args.folder)
            print(f"Wrote {path} ({len(read_manifest(args.folder))} files)")
        else:
            verify_manifest(args.folder)
            print(f"{args.folder}: all {len(read_manifest(args.folder))} files intact")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
