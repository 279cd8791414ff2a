"""Atomic writes leave either the complete new file or the old one, never a partial file."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from graymatter.io.atomic import atomic_path, save_image, write_json, write_tsv


def test_failed_write_leaves_target_untouched_and_no_temporary(tmp_path):
    target = tmp_path / "table.tsv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half a ta")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.tsv"]


def test_writers_round_trip(tmp_path):
    frame = pd.DataFrame({"t": [1.5, np.nan]}, index=pd.Index(["a", "b"], name="region"))
    back = pd.read_csv(write_tsv(tmp_path / "x.tsv", frame), sep="\t", index_col=0,
                       na_values="n/a")
    pd.testing.assert_frame_equal(back, frame)
    assert json.loads(write_json(tmp_path / "x.json", {"a": 1}).read_text()) == {"a": 1}
    img = nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4))
    loaded = nib.load(save_image(tmp_path / "x.nii.gz", img))
    np.testing.assert_array_equal(loaded.get_fdata(), img.get_fdata())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.nii.gz", "x.tsv"]


def test_disk_full_names_the_file_and_leaves_no_temporary(tmp_path):
    import errno

    from graymatter.errors import OutputError

    target = tmp_path / "map.nii.gz"
    with pytest.raises(OutputError, match=rf"could not write '{target}': the disk is full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert list(tmp_path.iterdir()) == []
    # An unrelated OSError (reading an input, say) is not mistaken for a failed write.
    with pytest.raises(FileNotFoundError):
        with atomic_path(target):
            open(tmp_path / "missing-input.csv")
