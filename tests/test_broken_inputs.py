"""Broken inputs are refused (or warned about) by name, never accepted silently.

Each test runs the command line, asserts the exit status, that the message names the culprit and
that no traceback reaches the user.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from graymatter.cli import main


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("graymatter: error:")]
    assert len(lines) == 1 and "Traceback" not in err and "this is a bug" not in err, err
    return lines[0]


# ================================================================ FreeSurfer region lists

def _subjects(shared_data, root, version, files):
    for name in ("sub-01", "sub-02"):
        stats = root / name / "stats"
        stats.mkdir(parents=True)
        for file in files:
            shutil.copy(shared_data / "freesurfer" / version / file, stats / file)


def _table(root, tmp_path, *extra):
    return main(["--quiet", "freesurfer-table", str(root), "--out", str(tmp_path / "t.tsv"),
                 *extra])


def test_truncated_aparc_stats_is_an_error_naming_file_and_regions(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs7.4.1_corrected", ("lh.aparc.stats", "rh.aparc.stats",
                                                       "aseg.stats"))
    lh = root / "sub-02" / "stats" / "lh.aparc.stats"
    lines = lh.read_text().splitlines(keepends=True)
    lh.write_text("".join(lines[:-10]))  # cut at a line boundary: every line left is whole
    assert _table(root, tmp_path) == 2
    message = _one_error(capsys)
    assert str(lh) in message and "24 of the 34 Desikan-Killiany" in message
    for region in ("rostralanteriorcingulate", "supramarginal", "insula"):
        assert region in message
    assert not (tmp_path / "t.tsv").exists()


def test_short_dkt_stats_is_an_error(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs6.0_fabian", ("rh.aparc.DKTatlas.stats",))
    for name in ("sub-01", "sub-02"):
        shutil.copy(shared_data / "freesurfer/fs6.0_fabian/lh.aparc.DKTatlas.stats",
                    root / name / "stats" / "lh.aparc.DKTatlas.stats")
    short = root / "sub-01" / "stats" / "lh.aparc.DKTatlas.stats"
    shutil.copy(shared_data / "freesurfer/fs6.0_fabian/lh.aparc.DKTatlas.stats.short", short)
    assert _table(root, tmp_path, "--annot", "aparc.DKTatlas", "--measure", "ThickAvg") == 2
    message = _one_error(capsys)
    assert str(short) in message and "3 of the 31 Desikan-Killiany-Tourville" in message
    assert "missing 28" in message and "superiorfrontal" in message


def test_omissible_dk_region_is_a_warning_naming_subject(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs7.4.1_corrected", ("lh.aparc.stats", "rh.aparc.stats"))
    rh = root / "sub-01" / "stats" / "rh.aparc.stats"
    rh.write_text("".join(line for line in rh.read_text().splitlines(keepends=True)
                          if not line.startswith("frontalpole ")))
    assert _table(root, tmp_path, "--measure", "ThickAvg") == 0
    err = capsys.readouterr().err
    assert "warning: Subject 'sub-01': rh.aparc.stats has no frontalpole" in err
    assert "Traceback" not in err
    table = pd.read_csv(tmp_path / "t.tsv", sep="\t", index_col="subject")
    assert table["rh_frontalpole"].isna().tolist() == [True, False]


def test_other_annotation_holes_are_warned_by_subject(shared_data, tmp_path, capsys):
    root = tmp_path / "subjects"
    _subjects(shared_data, root, "fs7.4.1_corrected",
              ("lh.aparc.a2009s.stats", "rh.aparc.a2009s.stats"))
    lh = root / "sub-02" / "stats" / "lh.aparc.a2009s.stats"
    lines = lh.read_text().splitlines(keepends=True)
    lh.write_text("".join(lines[:-2]))
    assert _table(root, tmp_path, "--annot", "aparc.a2009s", "--measure", "ThickAvg") == 0
    err = capsys.readouterr().err
    assert "1 aparc.a2009s stats file(s) lack regions" in err and "sub-02 lh:" in err
    assert "S_temporal_transverse" in err and "Traceback" not in err


# ================================================================ cached datasets

@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty data cache and no network."""
    from graymatter.datasets import fetchers

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(fetchers.urllib.request, "urlopen", no_network)
    monkeypatch.setenv("GRAYMATTER_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tampered_cached_dataset_is_refused_by_name(shared_data, cache, tmp_path, capsys):
    import hashlib

    from graymatter.datasets.registry import REGISTRY

    assert main(["--quiet", "fetch", "ahba-dk83", "--from", str(shared_data / "ahba")]) == 0
    cached = cache / REGISTRY["ahba-dk83"].filename
    data = bytearray(cached.read_bytes())
    position = data.index(b"0.5")  # change one expression value, keep the size
    data[position + 2] = ord("9") if data[position + 2] != ord("9") else ord("8")
    cached.write_bytes(bytes(data))
    (tmp_path / "map.tsv").write_text("region\tt\nL_bankssts\t1.5\nL_cuneus\t-2\n")
    code = main(["--quiet", "transcriptomics", "--map", str(tmp_path / "map.tsv"),
                 "--expression", "ahba-dk83", "--n-spins", "0", "--n-boot", "10",
                 "--out", str(tmp_path / "tx")])
    assert code == 2
    message = _one_error(capsys)
    assert f"({cached})" in message and hashlib.sha256(data).hexdigest() in message
    assert REGISTRY["ahba-dk83"].sha256 in message
    assert "graymatter fetch ahba-dk83" in message and "--force" in message
    # The fix the message gives works, and provenance then records the hash of the bytes read.
    assert main(["--quiet", "fetch", "ahba-dk83", "--from", str(shared_data / "ahba"),
                 "--force"]) == 0
    from graymatter.datasets.fetchers import dataset_record

    path, record = dataset_record("ahba-dk83")
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_verification_is_cached_by_path_size_and_mtime(shared_data, cache, monkeypatch):
    from graymatter.datasets import fetchers

    fetchers.fetch("hcp-mmp1-centroids", from_dir=shared_data / "surfaces")
    calls = []
    real = fetchers._sha256
    monkeypatch.setattr(fetchers, "_sha256", lambda path: calls.append(path) or real(path))
    path = fetchers.get_path("hcp-mmp1-centroids")
    fetchers.get_path("hcp-mmp1-centroids")
    assert len(calls) == 1  # hashed once per process
    text = path.read_bytes()
    path.write_bytes(text[:-2] + (b"9\n" if text[-2:] != b"9\n" else b"8\n"))  # same size
    with pytest.raises(fetchers.DataIntegrityError, match="does not match the registry"):
        fetchers.get_path("hcp-mmp1-centroids")
    assert len(calls) == 2  # the new modification time forced a new hash


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_fetch_into_unusable_cache_is_a_clear_error(shared_data, tmp_path, monkeypatch, capsys,
                                                    kind):
    import errno
    import os

    from graymatter.io import outputs

    home = tmp_path / "cache"
    if kind == "file":
        home.write_text("not a folder")
    else:
        home.mkdir()
        real_open = os.open

        def read_only(path, *args, **kwargs):  # root ignores chmod: fail like a read-only mount
            if os.path.basename(path).startswith(".graymatter-write-check-"):
                raise OSError(errno.EROFS, "Read-only file system", path)
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(outputs.os, "open", read_only)
    monkeypatch.setenv("GRAYMATTER_DATA", str(home))
    code = main(["fetch", "hcp-mmp1-centroids", "--from", str(shared_data / "surfaces")])
    assert code == 2
    message = _one_error(capsys)
    assert f"data cache ($GRAYMATTER_DATA) '{home}'" in message
    assert ("is a file, not a folder" if kind == "file" else "read-only") in message
