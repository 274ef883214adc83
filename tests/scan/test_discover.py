"""Finding images: recursive walk, content sniffing, DICOMDIR references."""

from __future__ import annotations

from pathlib import Path

import pytest
from scan_helpers import make_tree

from radproof.errors import InputError
from radproof.scan import ScanItem, Skipped, discover


def test_walk_finds_images_by_content_and_skips_the_rest(tmp_path: Path) -> None:
    make_tree(tmp_path)
    entries = list(discover([tmp_path]))
    items = sorted(Path(e.locator).relative_to(tmp_path).as_posix() for e in entries if isinstance(e, ScanItem))
    skipped = sorted(Path(e.path).name for e in entries if isinstance(e, Skipped))
    assert items == ["a/b/two.dcm", "a/one.dcm", "c/IM0001", "c/export.png"]
    assert skipped == ["README.txt", "notes"]
    item = next(e for e in entries if isinstance(e, ScanItem))
    assert item.source == str(tmp_path) and item.size and item.mtime_ns


def test_a_file_given_twice_is_listed_once(tmp_path: Path) -> None:
    files = make_tree(tmp_path)
    entries = [e for e in discover([tmp_path, files["a/one.dcm"]]) if isinstance(e, ScanItem)]
    assert len(entries) == 4


def test_dicomdir_references_are_followed_and_the_index_is_not_an_image(tmp_path: Path) -> None:
    from pydicom.fileset import FileSet

    from radproof.imaging.phantom import simulate

    fs = FileSet()
    for seed in range(3):
        fs.add(simulate(rows=64, cols=64, seed=seed))
    cd = tmp_path / "cd"
    fs.write(cd)
    assert (cd / "DICOMDIR").is_file()
    items = [e for e in discover([cd]) if isinstance(e, ScanItem)]
    assert len(items) == 3
    assert all(Path(i.locator).name != "DICOMDIR" for i in items)


def test_dicomdir_with_missing_files_is_reported(tmp_path: Path) -> None:
    from pydicom.fileset import FileSet

    from radproof.imaging.phantom import simulate

    fs = FileSet()
    fs.add(simulate(rows=64, cols=64, seed=1))
    fs.add(simulate(rows=64, cols=64, seed=2))
    cd = tmp_path / "cd"
    fs.write(cd)
    victims = [p for p in cd.rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    victims[0].unlink()
    entries = list(discover([cd]))
    assert sum(isinstance(e, ScanItem) for e in entries) == 1
    assert any(isinstance(e, Skipped) and "do not exist" in e.reason for e in entries)


def test_missing_target_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        list(discover([tmp_path / "nope"]))
