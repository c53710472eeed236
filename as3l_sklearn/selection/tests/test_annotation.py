"""Annotation round trip: export PNGs + selection.csv, a person fills it in, read it back."""

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.selection import export_for_annotation, read_annotations


@pytest.fixture
def images():
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, size=(12, 6, 5, 3), dtype=np.uint8)


def fill_in(selection, labels):
    """Write labels into selection.csv the way a person would: fill each row's empty label."""
    lines = selection.read_text().splitlines()
    edited = [lines[0]]
    for line in lines[1:]:
        file, _, preview = line.split(",")
        edited.append(f"{file},{labels.get(file, '')},{preview}")
    selection.write_text("\n".join(edited) + "\n")


def test_round_trip_with_hand_edited_csv(images, tmp_path):
    selection = export_for_annotation(images, [7, 2, 9], tmp_path / "batch")
    assert selection == tmp_path / "batch" / "selection.csv"
    # array data: the file column holds the row of X
    assert selection.read_text().splitlines() == [
        "file,label,preview", "7,,0000_index7.png", "2,,0001_index2.png", "9,,0002_index9.png"]
    # the PNGs hold exactly the selected images (uint8 H x W x C kept as they are)
    for line in selection.read_text().splitlines()[1:]:
        index, _, name = line.split(",")
        png = np.asarray(Image.open(tmp_path / "batch" / name))
        np.testing.assert_array_equal(png, images[int(index)])

    fill_in(selection, {"7": "3", "2": "0", "9": "3"})
    y = read_annotations(tmp_path / "batch", n_samples=12)
    assert y.dtype == np.int64
    expected = np.full(12, -1)
    expected[[7, 2, 9]] = [3, 0, 3]
    np.testing.assert_array_equal(y, expected)
    # the file itself works as the path too; n_samples defaults to max index + 1
    assert read_annotations(selection).shape == (10,)
    # a row left blank leaves its image unlabeled
    fill_in(selection, {"7": "3"})
    assert read_annotations(selection, n_samples=12).tolist().count(-1) == 11


def test_old_manifest_is_still_read(tmp_path):
    (tmp_path / "manifest.csv").write_text("index,file,label\n3,0000_index3.png,7\n"
                                           "1,0001_index1.png,2\n")
    assert read_annotations(tmp_path, n_samples=5).tolist() == [-1, 2, -1, 7, -1]


def test_string_labels_and_class_names(images, tmp_path):
    selection = export_for_annotation(images, [1, 4], tmp_path, class_names=["cat", "dog"])
    assert (tmp_path / "class_names.txt").read_text().split() == ["cat", "dog"]
    text = selection.read_text().replace("1,,", "1,dog,")
    selection.write_text(text.replace("4,,", "4, cat ,"))
    y = read_annotations(tmp_path, n_samples=6)
    assert y.dtype == object
    assert y.tolist() == [-1, "dog", -1, -1, "cat", -1]
    selection.write_text(text.replace("4,,", "4,cow,"))
    with pytest.raises(ValueError, match=r"line 3: label 'cow' is not one of the class names"):
        read_annotations(tmp_path)


def test_float_and_grayscale_images(tmp_path):
    gray = np.linspace(0, 1, 2 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    manifest = export_for_annotation(gray, [1], tmp_path)
    png = np.asarray(Image.open(tmp_path / "0000_index1.png"))
    assert png.shape == (4, 4) and png.dtype == np.uint8
    np.testing.assert_array_equal(png, np.round(gray[1, 0] * 255).astype(np.uint8))
    assert manifest.exists()


@pytest.mark.parametrize(
    "rows, message",
    [
        (["7,a.png,1", "7,b.png,2"], r"line 3: index 7 is a duplicate of line 2"),
        (["7,a.png,1", "2,b.png,"], r"line 3: the label of index 2 is blank"),
        (["7,a.png,1", "12,b.png,2"], r"line 3: index 12 is out of range \(n_samples=12\)"),
        (["-2,a.png,1"], r"line 2: index -2 is out of range"),
        (["x,a.png,1"], r"line 2: index 'x' is not an integer"),
        (["7,a.png,-1"], r"line 2: the label -1 is reserved"),
        (["7"], r"line 2: expected 3 columns"),
        ([], "no annotated rows"),
    ],
)
def test_read_annotations_rejects_bad_rows(rows, message, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(["index,file,label"] + rows) + "\n")
    with pytest.raises(ValueError, match=message):
        read_annotations(manifest, n_samples=12)


def test_read_annotations_bad_files(tmp_path):
    with pytest.raises(ValueError, match="no annotation file found"):
        read_annotations(tmp_path)
    (tmp_path / "manifest.csv").write_text("idx,picture,label\n1,a.png,2\n")
    with pytest.raises(ValueError,
                       match=r"missing column\(s\): found \['idx', 'picture', 'label'\]"):
        read_annotations(tmp_path)
    with pytest.raises(ValueError, match=r"The 'n_samples' parameter of read_annotations must be an int in "
                                         r"the range \[1, inf\) or None. Got 0 instead"):
        read_annotations(tmp_path, n_samples=0)
    with pytest.raises(TypeError, match="The 'path' parameter of read_annotations must be"):
        read_annotations(None)


def test_export_bad_input(images, tmp_path):
    with pytest.raises(ValueError, match=r"indices must be in \[0, 12\)"):
        export_for_annotation(images, [3, 12], tmp_path / "a")
    with pytest.raises(ValueError, match="indices must be distinct"):
        export_for_annotation(images, [3, 3], tmp_path / "b")
    with pytest.raises(TypeError, match="indices must hold integers"):
        export_for_annotation(images, ["3"], tmp_path / "c")
    with pytest.raises(ValueError, match="class_names must be distinct"):
        export_for_annotation(images, [1], tmp_path / "d", class_names=["a", "a"])
    with pytest.raises(TypeError, match="The 'class_names' parameter of export_for_annotation must be"):
        export_for_annotation(images, [1], tmp_path / "d", class_names="cat")
    with pytest.raises(TypeError, match="The 'overwrite' parameter of export_for_annotation must be"):
        export_for_annotation(images, [1], tmp_path / "d", overwrite="yes")
    with pytest.raises(ValueError, match="X is 2-D"):
        export_for_annotation(np.zeros((3, 4)), [1], tmp_path / "e")
    export_for_annotation(images, [1], tmp_path / "f")
    with pytest.raises(ValueError, match="already holds a selection.csv"):
        export_for_annotation(images, [2], tmp_path / "f")  # filled-in labels are never clobbered
    export_for_annotation(images, [2], tmp_path / "f", overwrite=True)
    assert "2,,0000_index2.png" in (tmp_path / "f" / "selection.csv").read_text()
