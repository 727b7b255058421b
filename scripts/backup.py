"""Online backup and restore of the embedded stores (SQLite files) and media files.

``scripts/backup [--data-dir DIR] [--media-root DIR] [--into DIR]`` writes one dated folder,
``backups/<UTC time>/`` by default, holding every SQLite database found under the data folder
(copied with SQLite's online backup API, so it is consistent while the services run and
write), every other file (media originals and thumbnails, the notifications file outbox)
and ``manifest.json`` listing what was taken with sizes and each database's integrity check.

``scripts/restore BACKUP [--data-dir DIR] [--media-root DIR] [--force]`` puts a backup back
into a data folder (refusing to overwrite existing databases unless ``--force``); start the
services on that folder afterwards.

Databases are taken before the other files: a media row whose file is uploaded during the
backup may be missing from it, but no row taken can point to a file uploaded later than it.
Standard library only; MongoDB deployments use ``mongodump``/``mongorestore`` (README).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
# SQLite's side files: their content is inside the backup copy of the database.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
MANIFEST = "manifest.json"


def is_sqlite(path: Path) -> bool:
    """True for a SQLite database file (by its 16-byte header, not its name)."""
    try:
        with path.open("rb") as handle:
            return handle.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(SIDE_SUFFIXES))


def copy_database(source: Path, target: Path) -> str:
    """Copy one database with the online backup API; return its ``integrity_check`` verdict."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)
        verdict = dst.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        dst.close()
        src.close()
    return verdict


def backup(data_dir: Path, into: Path, media_root: Path | None = None) -> dict:
    """Back up ``data_dir`` (and ``media_root`` when it lies outside it) into ``into``."""
    into.mkdir(parents=True, exist_ok=False)
    roots = {"data": data_dir}
    if media_root is not None and not media_root.resolve().is_relative_to(data_dir.resolve()):
        roots["media"] = media_root
    manifest: dict = {"createdAt": datetime.now(UTC).isoformat(), "roots": {}, "databases": [], "files": []}
    found = {name: _files(root) for name, root in roots.items()}
    for name, root in roots.items():
        manifest["roots"][name] = str(root.resolve())
        for path in found[name]:
            if is_sqlite(path):
                relative = Path(name) / path.relative_to(root)
                verdict = copy_database(path, into / relative)
                manifest["databases"].append({"path": str(relative), "integrity": verdict})
    for name, root in roots.items():
        for path in found[name]:
            if is_sqlite(path) or not path.exists():
                continue
            relative = Path(name) / path.relative_to(root)
            (into / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, into / relative)
            manifest["files"].append({"path": str(relative), "bytes": path.stat().st_size})
    (into / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def restore(source: Path, data_dir: Path, media_root: Path | None = None, *, force: bool = False) -> dict:
    """Copy a backup made by :func:`backup` into ``data_dir`` (and ``media_root``)."""
    manifest = json.loads((source / MANIFEST).read_text())
    bad = [db["path"] for db in manifest["databases"] if db["integrity"] != "ok"]
    if bad:
        raise SystemExit(f"refusing to restore: integrity check failed for {', '.join(bad)}")
    targets = {"data": data_dir, "media": media_root or data_dir / "media"}
    existing = [
        targets[Path(db["path"]).parts[0]] / Path(*Path(db["path"]).parts[1:]) for db in manifest["databases"]
    ]
    clash = [str(p) for p in existing if p.exists()]
    if clash and not force:
        raise SystemExit(f"refusing to overwrite existing databases (use --force): {', '.join(clash)}")
    for entry in [*manifest["databases"], *manifest["files"]]:
        relative = Path(entry["path"])
        target = targets[relative.parts[0]] / Path(*relative.parts[1:])
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in SIDE_SUFFIXES:  # a stale WAL must not be replayed over the restored file
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copy2(source / relative, target)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    take = commands.add_parser("backup", help="back up the data folder into a dated folder")
    take.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "./data"))
    take.add_argument("--media-root", default=os.environ.get("MEDIA_ROOT"))
    take.add_argument("--into", help="target folder (default backups/<UTC time>)")
    back = commands.add_parser("restore", help="restore a backup into a data folder")
    back.add_argument("backup")
    back.add_argument("--data-dir", default=os.environ.get("DATA_DIR", "./data"))
    back.add_argument("--media-root", default=os.environ.get("MEDIA_ROOT"))
    back.add_argument("--force", action="store_true", help="overwrite existing databases")
    args = parser.parse_args(argv)
    media_root = Path(args.media_root) if args.media_root else None
    if args.command == "backup":
        into = Path(args.into or Path("backups") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"))
        manifest = backup(Path(args.data_dir), into, media_root)
        print(f"backed up {len(manifest['databases'])} databases and {len(manifest['files'])} files into {into}")
    else:
        manifest = restore(Path(args.backup), Path(args.data_dir), media_root, force=args.force)
        print(
            f"restored {len(manifest['databases'])} databases and {len(manifest['files'])} files into {args.data_dir}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
