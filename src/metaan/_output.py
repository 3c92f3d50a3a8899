"""Writing output files without destroying anything.

Three rules hold for every file metaan writes, from the command line and from a
report build alike:

* a write is atomic: the bytes go to a temporary file in the same folder, which
  is then renamed over the target, so an interrupted run leaves the old file
  whole (:func:`atomic_write`);
* an output path that is one of the inputs is refused (:func:`refuse_input`);
* a folder of outputs is only ever cleaned of files that an earlier build of
  the same kind listed in its manifest (:class:`OutputFolder`); nothing else in
  it, the user's own files included, is touched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from metaan.errors import InputError

__all__ = ["MANIFEST", "OutputFolder", "atomic_write", "refuse_input", "writable_target"]

#: The manifest of a folder of outputs: one relative path a line, after a comment.
MANIFEST = ".metaan-manifest"
_MANIFEST_HEADER = "# files written by metaan; the next build removes only these\n"


def writable_target(path: str | os.PathLike[str]) -> Path:
    """``path`` as a file that can be written, or an :class:`InputError` saying why not.

    The folder must exist (it is never created implicitly, so a typo cannot
    scatter folders) and the path must not be a folder.
    """
    target = Path(path)
    name = os.fspath(path)
    if target.is_dir():
        raise InputError(
            "is a folder, not a file",
            file=name,
            fix="give a file name inside it, e.g. " + os.fspath(target / "out.csv"),
        )
    parent = target.parent
    if not parent.is_dir():
        kind = "is a file" if parent.exists() else "does not exist"
        raise InputError(
            f"cannot write here: the folder {os.fspath(parent)} {kind}",
            file=name,
            fix=f"create the folder first (mkdir -p {os.fspath(parent)}) or write elsewhere",
        )
    return target


def refuse_input(
    output: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]], *, flag: str = "-o"
) -> None:
    """Raise :class:`InputError` when ``output`` is one of ``inputs`` (the same file,
    by path or by a link)."""
    target = Path(output)
    for given in inputs:
        source = Path(given)
        same = target.resolve() == source.resolve()
        if not same and target.exists() and source.exists():
            try:
                same = target.samefile(source)
            except OSError:
                same = False
        if same:
            raise InputError(
                f"{flag} would overwrite the input {os.fspath(given)}",
                file=os.fspath(output),
                fix=f"give {flag} a different file name",
            )


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8 with ``\\n`` line ends) to ``path`` atomically.

    The data go to a temporary file beside ``path`` that is flushed to disk and
    renamed over it; on any failure the temporary file is removed and the old
    file, if there was one, is left as it was.

    Raises
    ------
    InputError
        The folder does not exist, ``path`` is a folder, or the file cannot be written.
    """
    target = writable_target(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    # tempfile (with shutil, bz2, lzma and random) is imported only to write a file:
    # printing to stdout, as most commands do, never needs it.
    import tempfile

    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".part", dir=target.parent
        )
    except OSError as exc:
        raise InputError(
            f"cannot write here ({exc.strerror or exc})",
            file=os.fspath(path),
            fix="check that the folder is writable",
        ) from exc
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        if target.exists():
            # Keep the permissions of the file being replaced.
            os.chmod(temporary, target.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise InputError(
            f"cannot write the output ({exc.strerror or exc})",
            file=os.fspath(path),
            fix="check that the folder is writable and the disk not full",
        ) from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


class OutputFolder:
    """A folder of outputs that a build owns only file by file.

    Files are written with :meth:`write` (atomically, inside the folder, never
    over an input). :meth:`finish` then removes the files that the previous
    build listed in the folder's manifest and this one did not write, and
    writes the new manifest. A file the manifest never listed is never removed.

    Parameters
    ----------
    root
        The folder; created if missing. An existing file of that name is refused.
    inputs
        Files that must not be overwritten (the specification, the data).
    """

    def __init__(self, root: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]] = ()):
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise InputError(
                "the output folder is a file",
                file=os.fspath(root),
                fix="give -o the name of a folder (a new one is created)",
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the output folder ({exc.strerror or exc})",
                file=os.fspath(root),
                fix="check the path and that its parent folder is writable",
            ) from exc
        self.root = path.resolve()
        self.inputs = tuple(Path(p).resolve() for p in inputs)
        self.previous = self._read_manifest()
        self.written: list[Path] = []

    def _read_manifest(self) -> tuple[str, ...]:
        manifest = self.root / MANIFEST
        if not manifest.is_file():
            return ()
        lines = manifest.read_text(encoding="utf-8").splitlines()
        return tuple(line for line in lines if line and not line.startswith("#"))

    def path(self, relative: str) -> Path:
        """The absolute path of ``relative``, checked to lie inside the folder."""
        target = (self.root / relative).resolve()
        if self.root not in target.parents:
            raise InputError(
                f"refusing to write {target}: it is outside the output folder",
                file=os.fspath(self.root),
            )
        return target

    def write(self, relative: str, data: str | bytes) -> Path:
        """Write ``data`` to ``relative`` inside the folder, atomically; return its path."""
        target = self.path(relative)
        refuse_input(target, self.inputs, flag="the output folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)
        self.track(target)
        return target

    def track(self, target: Path) -> None:
        """Record a file written inside the folder by other means (e.g. another process)."""
        resolved = target.resolve()
        if resolved not in self.written:
            self.written.append(resolved)

    def finish(self) -> tuple[Path, ...]:
        """Remove what the previous build wrote and this one did not; write the manifest.

        Returns the paths removed.
        """
        now = {p.relative_to(self.root).as_posix() for p in self.written}
        removed: list[Path] = []
        for relative in self.previous:
            if relative in now or relative == MANIFEST:
                continue
            try:
                target = self.path(relative)
            except InputError:
                continue  # a manifest edited by hand cannot point outside
            if target.is_file() and not target.is_symlink():
                target.unlink()
                removed.append(target)
                self._remove_empty_parents(target.parent)
        text = _MANIFEST_HEADER + "".join(f"{name}\n" for name in sorted(now))
        atomic_write(self.root / MANIFEST, text)
        return tuple(removed)

    def _remove_empty_parents(self, folder: Path) -> None:
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                return
            folder = folder.parent
