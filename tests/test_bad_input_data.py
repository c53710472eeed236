"""One table of bad data files: image folders and label files as users hand them over.

A sibling of ``test_bad_input.py`` for the loaders (issue 12 items 5, 7 and 8): each row writes
a small file or folder in ``tmp_path``, calls :func:`load_image_folder` or
:func:`read_annotations`, and checks the exception and that its message names the file, row or
argument. Rows that must *not* fail check what comes back.
"""

import warnings

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.datasets import load_image_folder
from as3l_sklearn.selection import export_for_annotation, read_annotations


def _text(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _png(path, shape=(4, 4)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(shape, np.uint8)).save(path)


# (id, file name, content, encoding, read_annotations kwargs, exception, message pattern)
ANNOTATION_ERRORS = [
    ("20-digit label", "m.csv", "index,file,label\n1,a.png,12345678901234567890\n", "utf-8",
     {"n_samples": 3}, ValueError, r"m\.csv, line 2: label '12345678901234567890' is an "
                                  r"integer too large"),
    ("10 MB cell", "m.csv", "index,file,label\n1,a.png," + "x" * 10_000_000 + "\n", "utf-8",
     {"n_samples": 3}, ValueError, r"m\.csv, line 2: cannot parse the CSV"),
    ("index 1e12", "m.csv", "index,file,label\n1000000000000,a.png,2\n", "utf-8",
     {}, ValueError, r"m\.csv, line 2: index 1000000000000 is larger than .*pass n_samples"),
    ("index past the pool", "m.csv", "index,file,label\n5,a.png,2\n", "utf-8",
     {"n_samples": 5}, ValueError, r"line 2: index 5 is out of range \(n_samples=5\)"),
    ("broken UTF-16", "m.csv", "\ufeffindex", "utf-16-le", {}, None, None),
    ("integers mixed with names", "s.csv", "file,label\n0,1\n1,cat\n", "utf-8",
     {}, ValueError, r"s\.csv, line 3: label 'cat' is a name but .*line 2 has the integer"),
    ("label outside class_names", "s.csv", "file,label\n0,sneakr\n", "utf-8",
     {"class_names": ["sneaker", "shirt"]}, ValueError,
     r"s\.csv, line 2: label 'sneakr' is not one of the class names in class_names: "
     r"\['sneaker', 'shirt'\]"),
    ("question mark label", "s.csv", "file,label\n0,?\n", "utf-8",
     {"class_names": ["sneaker", "shirt"]}, ValueError, r"line 2: label '\?' is not one of"),
    ("no image column", "s.csv", "what,label\nx,1\n", "utf-8",
     {}, ValueError, r"s\.csv: missing column\(s\)"),
    ("file names without files=", "s.csv", "filename,label\nIMG_1.jpg,cat\n", "utf-8",
     {}, ValueError, r"line 2: the row names the file 'IMG_1\.jpg'; pass files="),
    ("two choices for one image", "e.json", '[{"image": "0", "choice": {"choices": ["a", "b"]}}]',
     "utf-8", {}, ValueError, r"e\.json, item 1: 2 choices"),
    ("truncated JSON", "e.json", '[{"image": ', "utf-8",
     {}, ValueError, r"e\.json: cannot parse the JSON"),
]


@pytest.mark.parametrize(
    "name, content, encoding, kwargs, error, pattern",
    [row[1:] for row in ANNOTATION_ERRORS], ids=[row[0] for row in ANNOTATION_ERRORS])
def test_read_annotations_errors_name_the_file_and_row(tmp_path, name, content, encoding,
                                                       kwargs, error, pattern):
    if error is None:  # a UTF-16 byte order mark, then an odd byte: cannot be decoded
        path = tmp_path / name
        path.write_bytes(b"\xff\xfei\x00n\x00\x00\xd8")
        error, pattern = ValueError, r"m\.csv: cannot decode the file as utf-16"
    else:
        path = _text(tmp_path, name, content, encoding)
    with pytest.raises(error, match=pattern):
        read_annotations(path, **kwargs)


# (id, file name, content, encoding, kwargs, expected y)
ANNOTATION_ACCEPTED = [
    ("'1' and '1.0' are one class", "m.csv", "index,file,label\n0,a,1\n1,b,1.0\n2,c,+2\n",
     "utf-8", {}, [1, 1, 2]),
    ("latin-1 file", "m.csv", "index,file,label\n1,a.png,élan\n", "latin-1",
     {"n_samples": 2}, [-1, "élan"]),
    ("semicolon CSV", "s.csv", "file;label\n1;3\n0;4\n", "utf-8", {}, [4, 3]),
    ("tab-separated with BOM", "s.tsv", "\ufeffImage\tClass\n2\tcat\n", "utf-8", {},
     [-1, -1, "cat"]),
    ("Label Studio CSV: blank choice is unlabeled", "ls.csv",
     "image,id,choice,annotator,annotation_id,created_at,updated_at,lead_time\n"
     "0,271,,1,1,t,t,1.0\n1,272,shirt,1,2,t,t,2.0\n", "utf-8", {"n_samples": 3},
     [-1, "shirt", -1]),
    ("class name matched case-insensitively", "s.csv", "file,label\n0, SHIRT \n", "utf-8",
     {"class_names": ["Shirt"]}, ["Shirt"]),
]


@pytest.mark.parametrize(
    "name, content, encoding, kwargs, expected",
    [row[1:] for row in ANNOTATION_ACCEPTED], ids=[row[0] for row in ANNOTATION_ACCEPTED])
def test_read_annotations_accepts(tmp_path, name, content, encoding, kwargs, expected):
    y = read_annotations(_text(tmp_path, name, content, encoding), **kwargs)
    assert y.tolist() == expected
    assert y.dtype == (np.int64 if all(isinstance(v, int) for v in expected) else object)


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"labels": "folders"}, ValueError, r"The 'labels' parameter of load_image_folder must be a str among"),
        ({"max_size": 0}, ValueError, r"The 'max_size' parameter of load_image_folder must be an int in the range"),
        ({"on_error": "skip"}, ValueError, r"The 'on_error' parameter of load_image_folder must be a str among"),
        ({"image_size": (0, 3)}, ValueError, r"The 'image_size' parameter of load_image_folder must be an int >= 1"),
        ({"color_mode": "cmyk"}, ValueError, r"The 'color_mode' parameter of load_image_folder must be a str among"),
        ({"lazy": "yes"}, TypeError, r"The 'lazy' parameter of load_image_folder must be an instance of 'bool'"),
    ],
)
def test_load_image_folder_bad_arguments(tmp_path, kwargs, error, pattern):
    _png(tmp_path / "a.png")
    with pytest.raises(error, match=pattern):
        load_image_folder(tmp_path, **kwargs)


def test_load_image_folder_unreadable_file_raise_or_warn(tmp_path):
    _png(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    with pytest.raises(ValueError, match=r"cannot read image .*b\.jpg.*on_error='warn'"):
        load_image_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped unreadable image .*b\.jpg"):
        bunch = load_image_folder(tmp_path, on_error="warn", return_X_y=False)
    assert bunch.files.tolist() == ["a.png"] and bunch.skipped == ["b.jpg"]


def test_load_image_folder_only_unreadable_files(tmp_path):
    (tmp_path / "b.png").write_bytes(b"nothing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"holds no readable image; skipped: \['b\.png'\]"):
            load_image_folder(tmp_path, on_error="warn")


def test_export_refuses_to_overwrite_labels(tmp_path):
    X = np.zeros((3, 4, 4, 1), np.uint8)
    export_for_annotation(X, [1], tmp_path)
    with pytest.raises(ValueError, match=r"already holds a selection\.csv; pass overwrite=True"):
        export_for_annotation(X, [2], tmp_path)
