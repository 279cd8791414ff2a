"""Data registry and fetchers: cache location, sha256 checks, local import, (mocked) downloads.

No test here touches the network: every test runs with ``urllib.request.urlopen`` replaced by a
function that fails, unless the test installs a local fake server response itself.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from graymatter.commands.transcriptomics import register
from graymatter.datasets import fetchers
from graymatter.datasets.fetchers import (DataNotFoundError, data_home, extract_member, fetch,
                                          get_path, resource)
from graymatter.datasets.registry import REGISTRY, Resource
from graymatter.errors import InputError


class NetworkUsed(AssertionError):
    pass


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch):
    """An empty cache in tmp_path, and no network: urlopen raises."""
    def no_network(*args, **kwargs):
        raise NetworkUsed(f"a test tried to download {args[0] if args else kwargs}")

    monkeypatch.setattr(fetchers.urllib.request, "urlopen", no_network)
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAYMATTER_DATA", str(cache))
    return cache


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_resource(data: bytes, **kw) -> Resource:
    base = dict(name="fake", filename="fake.csv", url="https://example.invalid/fake.csv",
                sha256=_sha(data), size=len(data), licence="CC0", citation="none",
                description="test file")
    base.update(kw)
    return Resource(**base)


def test_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GRAYMATTER_DATA", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "a"
    monkeypatch.delenv("GRAYMATTER_DATA")
    assert data_home() == tmp_path / "xdg" / "graymatter"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home" / ".cache" / "graymatter"


def test_registry_matches_manifest(shared_data):
    manifest = pd.read_csv(shared_data / "MANIFEST.tsv", sep="\t")
    by_name = {Path(p).name: row for p, row in zip(manifest["path"], manifest.itertuples())}
    required = {"ahba-dk83", "ahba-glasser360-ds06", "ahba-dk82-ds06", "celltypes-seidlitz2020",
                "genesets-pooled", "genesets-lake", "go-bp-2021", "hcp-mmp1-centroids",
                "fsaverage5-sphere-lh", "fsaverage5-sphere-rh", "fsaverage5-dk-annot-lh",
                "fsaverage5-dk-annot-rh", "fsaverage5-glasser360-annot-lh",
                "fsaverage5-glasser360-annot-rh"}
    assert required <= set(REGISTRY)
    for res in REGISTRY.values():
        row = by_name[res.filename]
        assert res.sha256 == row.sha256, res.name
        assert res.size == row.bytes, res.name
        assert res.licence and res.citation and res.description
        if res.is_pypi:
            assert "==" in res.url and res.member
        else:
            # pinned at the commit recorded in the manifest
            commit = row.source.split("@")[1].split()[0]
            assert f"/raw/{commit}/" in res.url, res.name


def test_get_path_missing_names_the_exact_command():
    with pytest.raises(DataNotFoundError) as err:
        get_path("ahba-dk83")
    assert ("run `graymatter fetch ahba-dk83` (or `graymatter fetch ahba-dk83 --from DIR` for a "
            "local copy)") in str(err.value)
    assert isinstance(err.value, InputError)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(InputError, match="Did you mean 'ahba-dk83'") as err:
        resource("ahba-dk38")
    assert "go-bp-2021" in str(err.value)  # the full list is shown
    with pytest.raises(InputError, match="unknown dataset"):
        fetch("no-such-thing", from_dir=".")


def test_fetch_from_dir_imports_and_verifies(shared_data, offline_cache):
    path = fetch("hcp-mmp1-centroids", from_dir=shared_data)
    assert path == offline_cache / "sphere_HCP_centroids.txt"
    assert _sha(path.read_bytes()) == REGISTRY["hcp-mmp1-centroids"].sha256
    assert get_path("hcp-mmp1-centroids") == path
    # already cached: returned without looking at from_dir again
    assert fetch("hcp-mmp1-centroids", from_dir="/nonexistent") == path
    assert not list(offline_cache.glob(".*tmp*"))  # no temporary files left behind


def test_fetch_from_dir_hash_mismatch(tmp_path, offline_cache):
    src = tmp_path / "copy" / "deep"
    src.mkdir(parents=True)
    bad = src / "sphere_HCP_centroids.txt"
    bad.write_text("1 2 3\n")
    with pytest.raises(InputError) as err:
        fetch("hcp-mmp1-centroids", from_dir=tmp_path / "copy")
    msg = str(err.value)
    assert REGISTRY["hcp-mmp1-centroids"].sha256 in msg
    assert _sha(bad.read_bytes()) in msg
    assert not (offline_cache / "sphere_HCP_centroids.txt").exists()
    with pytest.raises(InputError, match="no file named"):
        fetch("ahba-dk83", from_dir=tmp_path)


def test_get_path_detects_truncated_cache(shared_data, offline_cache):
    fetch("hcp-mmp1-centroids", from_dir=shared_data)
    (offline_cache / "sphere_HCP_centroids.txt").write_text("truncated")
    with pytest.raises(DataNotFoundError, match="--force"):
        get_path("hcp-mmp1-centroids")
    # fetch notices the bad hash and imports again
    path = fetch("hcp-mmp1-centroids", from_dir=shared_data)
    assert _sha(path.read_bytes()) == REGISTRY["hcp-mmp1-centroids"].sha256


def test_download_is_blocked_in_tests():
    with pytest.raises(NetworkUsed):
        fetch("go-bp-2021")


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_checks_hash_and_renames_atomically(monkeypatch, offline_cache):
    data = b"gene,class\nGPC5,Astro\n"
    monkeypatch.setattr(fetchers.urllib.request, "urlopen", lambda *a, **k: _Response(data))
    res = _fake_resource(data)
    path = fetch(res, progress=False)
    assert path.read_bytes() == data and path.parent == offline_cache
    wrong = _fake_resource(data, filename="other.csv", sha256="0" * 64)
    with pytest.raises(InputError, match="expected 0{64}, got " + _sha(data)):
        fetch(wrong, progress=False)
    assert not (offline_cache / "other.csv").exists()
    assert [p.name for p in offline_cache.iterdir()] == ["fake.csv"]


def test_failed_download_says_how_to_import(monkeypatch):
    def refuse(*a, **k):
        raise OSError("connection refused")

    monkeypatch.setattr(fetchers.urllib.request, "urlopen", refuse)
    with pytest.raises(InputError, match="--from DIR"):
        fetch(_fake_resource(b"x"), progress=False)


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_extract_member_from_sdist(tmp_path, kind):
    payload = b"Astro\tNA\tGPC5\n"
    member = "pkg-1.0/pkg/data/geneset_Pooled.gmt"
    archive = tmp_path / ("pkg-1.0.tar.gz" if kind == "tar" else "pkg-1.0.zip")
    if kind == "tar":
        with tarfile.open(archive, "w:gz") as tf:
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
            other = tarfile.TarInfo("pkg-1.0/README")
            other.size = 2
            tf.addfile(other, io.BytesIO(b"hi"))
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(member, payload)
    res = _fake_resource(payload, url="pypi:pkg==1.0", member="pkg/data/geneset_Pooled.gmt",
                         filename="geneset_Pooled.gmt")
    out = extract_member(archive, res, tmp_path / "out" / "geneset_Pooled.gmt")
    assert out.read_bytes() == payload
    bad = _fake_resource(payload, member="pkg/data/missing.gmt")
    with pytest.raises(InputError, match="holds no file ending in"):
        extract_member(archive, bad, tmp_path / "out2.gmt")
    wrong = _fake_resource(payload, member="pkg/data/geneset_Pooled.gmt", sha256="f" * 64)
    with pytest.raises(InputError, match="expected f{64}"):
        extract_member(archive, wrong, tmp_path / "out3.gmt")
    assert not (tmp_path / "out3.gmt").exists()


def _cli(argv):
    parser = argparse.ArgumentParser(prog="graymatter")
    parser.add_argument("--quiet", action="store_true")
    handlers = register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return handlers[args.command](args)


def test_cli_fetch_list_and_from(shared_data, offline_cache, capsys):
    assert _cli(["fetch", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in REGISTRY)
    assert _cli(["--quiet", "fetch", "fsaverage5-sphere-lh", "fsaverage5-dk-annot-lh",
                 "--from", str(shared_data)]) == 0
    assert (offline_cache / "fsa5_sphere_lh.gii").is_file()
    assert (offline_cache / "fsa5_lh_aparc.annot").is_file()
    with pytest.raises(InputError, match="name the dataset"):
        _cli(["fetch"])
