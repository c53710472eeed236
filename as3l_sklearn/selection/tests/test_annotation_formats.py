"""Labels back by file name, from our selection.csv and from what labelling tools write.

Every sample file is written by the test itself: Label Studio CSV and JSON-MIN exports as the
tool lays them out, a semicolon CSV saved by a spreadsheet in cp1252, CVAT-style
``filename,label`` files.
"""

import json
import re
import warnings

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.datasets import load_image_folder
from as3l_sklearn.selection import (
    export_for_annotation,
    read_annotations,
    write_label_studio_tasks,
)

POOL = ["IMG_1036.jpg", "IMG_1037.jpg", "IMG_1038.jpg", "trip/IMG_2001.jpg", "trip/beach.png"]


def _photo(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((6, 8, 3), value, dtype=np.uint8)).save(path)


def _fill(selection, labels):
    lines = selection.read_text(encoding="utf-8").splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        file, _, preview = line.split(",")
        out.append(f"{file},{labels.get(file, '')},{preview}")
    selection.write_text("\n".join(out) + "\n", encoding="utf-8")


def test_round_trip_survives_an_image_added_before_import(tmp_path):
    # the reported case: adding IMG_1037 shifted every index-keyed label to the wrong file
    photos = tmp_path / "shop_photos"
    for name, value in [("IMG_1036.jpg", 10), ("IMG_1038.jpg", 30), ("IMG_1039.jpg", 40),
                        ("nested/IMG_2001.jpg", 50)]:
        _photo(photos / name, value)
    pool = load_image_folder(photos, labels="none", return_X_y=False)
    selection = export_for_annotation(pool.images, [1, 3], tmp_path / "to_label",
                                      files=pool.files, class_names=["shirt", "shoe"])
    assert selection.read_text().splitlines() == [
        "file,label,preview", "IMG_1038.jpg,,0000_IMG_1038.png",
        "nested/IMG_2001.jpg,,0001_IMG_2001.png"]
    assert (tmp_path / "to_label" / "0000_IMG_1038.png").is_file()
    _fill(selection, {"IMG_1038.jpg": "shirt", "nested/IMG_2001.jpg": "Shoe"})

    _photo(photos / "IMG_1037.jpg", 20)  # a new photo sorts before the labeled ones
    pool = load_image_folder(photos, labels="none", return_X_y=False)
    y = read_annotations(tmp_path / "to_label", files=pool.files)
    labeled = {f: label for f, label in zip(pool.files, y) if label != -1}
    assert labeled == {"IMG_1038.jpg": "shirt", "nested/IMG_2001.jpg": "shoe"}
    assert y.dtype == object and len(y) == 5


def test_rows_of_removed_images_are_reported_not_shifted(tmp_path):
    csv_file = tmp_path / "selection.csv"
    csv_file.write_text("file,label,preview\ngone.jpg,shirt,0000_gone.png\n"
                        "IMG_1038.jpg,shoe,0001_IMG_1038.png\n")
    with pytest.warns(UserWarning, match=r"1 labeled file\(s\) are not in the pool.*gone\.jpg"):
        y = read_annotations(csv_file, files=POOL)
    assert y.tolist() == [-1, -1, "shoe", -1, -1]


def test_label_studio_csv_export(tmp_path):
    # as Label Studio exports CSV: uploads carry an 8-hex prefix, skipped tasks a blank choice
    export = tmp_path / "project-3-at-2026-11-23.csv"
    export.write_text(
        "image,id,choice,annotator,annotation_id,created_at,updated_at,lead_time\n"
        "/data/upload/3/1a2b3c4d-IMG_1038.jpg,271,,1,5,2026-11-23T10:00:00Z,"
        "2026-11-23T10:00:00Z,3.1\n"
        "/data/upload/3/9f8e7d6c-IMG_1036.jpg,272,Shirt,1,6,2026-11-23T10:01:00Z,"
        "2026-11-23T10:01:00Z,2.4\n"
        "/data/local-files/?d=shop_photos/trip/IMG_2001.jpg,273,shoe,1,7,"
        "2026-11-23T10:02:00Z,2026-11-23T10:02:00Z,1.0\n")
    y = read_annotations(export, files=POOL, class_names=["shirt", "shoe"])
    assert y.tolist() == ["shirt", -1, -1, "shoe", -1]


def test_label_studio_json_min_export(tmp_path):
    export = tmp_path / "export.json"
    export.write_text(json.dumps([
        {"image": "/data/upload/3/0a0b0c0d-IMG_1037.jpg", "id": 5, "choice": "shoe",
         "annotator": 1, "annotation_id": 9, "created_at": "x", "updated_at": "x",
         "lead_time": 2.0},
        {"image": "/data/local-files/?d=trip%2Fbeach.png", "id": 6,
         "choice": {"choices": ["shirt"]}},
        {"image": "/data/upload/3/0a0b0c0e-IMG_1036.jpg", "id": 7},  # not labeled yet
    ]))
    assert read_annotations(export, files=POOL).tolist() == [-1, "shoe", -1, -1, "shirt"]
    export.write_text(json.dumps([{"image": "IMG_1036.jpg",
                                   "choice": {"choices": ["shirt", "shoe"]}}]))
    with pytest.raises(ValueError, match=r"export\.json, item 1: 2 choices"):
        read_annotations(export, files=POOL)


def test_label_studio_tasks_with_priors_read_back_from_json_min(tmp_path):
    selected = ["IMG_1038.jpg", "trip/beach.png"]
    priors = np.array([[0.2, 0.8], [0.9, 0.1]])
    tasks_file = write_label_studio_tasks(tmp_path, selected, priors=priors,
                                          classes=["shirt", "shoe"])
    assert tasks_file == tmp_path / "tasks.json"
    tasks = json.loads(tasks_file.read_text())
    assert [t["data"]["image"] for t in tasks] == [
        "/data/local-files/?d=IMG_1038.jpg", "/data/local-files/?d=trip/beach.png"]
    prediction = tasks[0]["predictions"][0]
    assert prediction["model_version"] == "as3l-prior"
    assert prediction["score"] == pytest.approx(0.8)
    assert prediction["result"] == [{"from_name": "choice", "to_name": "image",
                                     "type": "choices", "value": {"choices": ["shoe"]}}]
    # what Label Studio's JSON-MIN export of these tasks holds: the task data fields, the
    # <Choices> answer under its name, and bookkeeping columns
    export = [dict(task["data"], id=i + 1, choice=answer, annotator=1, annotation_id=i + 1,
                   created_at="2026-11-23T10:00:00Z", lead_time=1.5)
              for i, (task, answer) in enumerate(zip(tasks, ["shoe", "Shirt"]))]
    (tmp_path / "export.json").write_text(json.dumps(export))
    y = read_annotations(tmp_path / "export.json", files=POOL, class_names=["shirt", "shoe"])
    assert y.tolist() == [-1, -1, "shoe", -1, "shirt"]
    # a custom image_root (the document root is the folder's parent) still matches by path
    tasks_file = write_label_studio_tasks(tmp_path / "t2.json", selected,
                                          image_root="/data/local-files/?d=photos/")
    assert "predictions" not in json.loads(tasks_file.read_text())[0]
    export = [{"image": t["data"]["image"], "choice": "shoe"}
              for t in json.loads(tasks_file.read_text())]
    (tmp_path / "export2.json").write_text(json.dumps(export))
    assert read_annotations(tmp_path / "export2.json", files=POOL).tolist() == [
        -1, -1, "shoe", -1, "shoe"]


def _urls(tasks_file):
    return [task["data"]["image"] for task in json.loads(tasks_file.read_text())]


def test_label_studio_urls_are_relative_to_the_document_root(tmp_path, monkeypatch):
    # Label Studio serves ?d=PATH (PATH below LOCAL_FILES_DOCUMENT_ROOT) only from a storage
    # below the root, never one equal to it: the root defaults to the folder's parent
    files = ["IMG_0001.png", "trip/b c.png"]
    tasks = write_label_studio_tasks(tmp_path / "t.json", files, folder=tmp_path / "photos")
    assert _urls(tasks) == ["/data/local-files/?d=photos/IMG_0001.png",
                            "/data/local-files/?d=photos/trip/b%20c.png"]
    assert [t["data"]["file"] for t in json.loads(tasks.read_text())] == files
    deep = tmp_path / "home" / "me" / "shop photos"
    tasks = write_label_studio_tasks(tmp_path / "t.json", files, folder=deep,
                                     document_root=tmp_path / "home")
    assert _urls(tasks)[1] == "/data/local-files/?d=me/shop%20photos/trip/b%20c.png"
    monkeypatch.chdir(tmp_path)  # relative paths are taken from the working folder
    tasks = write_label_studio_tasks(tmp_path / "t.json", files[:1], folder="me/photos",
                                     document_root=".")
    assert _urls(tasks) == ["/data/local-files/?d=me/photos/IMG_0001.png"]
    # a document root given through a symbolic link still finds the folder below it
    (tmp_path / "real" / "photos").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    tasks = write_label_studio_tasks(tmp_path / "t.json", files[:1],
                                     folder=tmp_path / "real" / "photos",
                                     document_root=tmp_path / "link")
    assert _urls(tasks) == ["/data/local-files/?d=photos/IMG_0001.png"]
    # without folder, files are paths relative to the document root; image_root as given
    assert _urls(write_label_studio_tasks(tmp_path / "t.json", ["photos/a.png"])) == [
        "/data/local-files/?d=photos/a.png"]
    assert _urls(write_label_studio_tasks(tmp_path / "t.json", files[1:],
                                          image_root="https://img.example.org/p/")) == [
        "https://img.example.org/p/trip/b%20c.png"]


def test_label_studio_urls_bad_folder(tmp_path):
    def write(**kwargs):
        return write_label_studio_tasks(tmp_path / "t.json", ["a.png"], **kwargs)

    photos = tmp_path / "photos"
    with pytest.raises(ValueError, match="must be a sub-folder of document_root.*refuses a "
                                         "storage equal to it"):
        write(folder=photos, document_root=photos)
    with pytest.raises(ValueError, match="must be a sub-folder of document_root"):
        write(folder=tmp_path, document_root=photos)
    with pytest.raises(ValueError, match="has no parent"):
        write(folder="/")
    with pytest.raises(ValueError, match="pass image_root .* or folder and document_root"):
        write(folder=photos, image_root="https://img.example.org/")
    with pytest.raises(TypeError, match="document_root must be a path, got int"):
        write(folder=photos, document_root=3)


def test_label_studio_tasks_the_persons_label_wins(tmp_path):
    # an image a person labeled carries that label as an annotation, not the prior's guess
    files = ["a.png", "b.png", "c.png", "d.png"]
    priors = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]
    for unlabeled in (-1, "-1", None, ""):
        tasks = json.loads(write_label_studio_tasks(
            tmp_path / "t.json", files, priors=priors, classes=["cat", "dog"],
            labels=np.array(["dog", unlabeled, "cat", -1], dtype=object),
            folder=tmp_path / "photos").read_text())
        assert [sorted(set(t) - {"data"}) for t in tasks] == [
            ["annotations"], ["predictions"], ["annotations"], ["predictions"]]
        assert tasks[0]["annotations"] == [{"result": [
            {"from_name": "choice", "to_name": "image", "type": "choices",
             "value": {"choices": ["dog"]}}]}]
        assert tasks[2]["annotations"][0]["result"][0]["value"] == {"choices": ["cat"]}
        assert tasks[1]["predictions"][0]["result"][0]["value"] == {"choices": ["cat"]}
    # integer labels (read_annotations' int64 vector) without priors: annotations only
    tasks = json.loads(write_label_studio_tasks(tmp_path / "t.json", files[:2],
                                                labels=np.array([3, -1])).read_text())
    assert tasks[0]["annotations"][0]["result"][0]["value"] == {"choices": ["3"]}
    assert set(tasks[1]) == {"data"}
    with pytest.raises(ValueError, match=r"labels \['bird'\] are not among classes"):
        write_label_studio_tasks(tmp_path / "t.json", files[:1], priors=[[1.0, 0.0]],
                                 classes=["cat", "dog"], labels=["bird"])
    with pytest.raises(ValueError, match="labels must have one entry per file: got 1 for 2"):
        write_label_studio_tasks(tmp_path / "t.json", files[:2], labels=["cat"])
    with pytest.raises(TypeError, match="labels must be a sequence"):
        write_label_studio_tasks(tmp_path / "t.json", files[:1], labels="cat")


def test_label_studio_full_json_export(tmp_path):
    export = [{"id": 1, "data": {"image": "/data/upload/1/abcdef12-IMG_1036.jpg"},
               "annotations": [{"was_cancelled": False, "result": [
                   {"from_name": "choice", "to_name": "image", "type": "choices",
                    "value": {"choices": ["shirt"]}}]}]},
              {"id": 2, "data": {"image": "/data/upload/1/abcdef13-IMG_1037.jpg"},
               "annotations": []}]
    (tmp_path / "full.json").write_text(json.dumps(export))
    assert read_annotations(tmp_path / "full.json", files=POOL).tolist() == [
        "shirt", -1, -1, -1, -1]


def test_semicolon_cp1252_spreadsheet_with_accented_class(tmp_path):
    sheet = tmp_path / "labels.csv"
    sheet.write_bytes("Filename;Label\r\nIMG_1036.jpg;Café\r\nbeach.png; thé \r\n"
                      .encode("cp1252"))
    y = read_annotations(sheet, files=POOL, class_names=["café", "thé"])
    assert y.tolist() == ["café", -1, -1, -1, "thé"]
    # without a class list the names are kept as written (spaces stripped)
    assert read_annotations(sheet, files=POOL).tolist() == ["Café", -1, -1, -1, "thé"]


def test_excel_sep_line(tmp_path):
    sheet = tmp_path / "labels.csv"
    # the declared delimiter wins, though the header has none and a cell holds a comma
    sheet.write_text("sep=;\nFile;Label\nIMG_1037.jpg;shoe\nIMG_1036.jpg;size 12,5\n")
    assert read_annotations(sheet, files=POOL).tolist() == ["size 12,5", "shoe", -1, -1, -1]
    sheet.write_text("sep=;\nFile;Label\nIMG_1037.jpg;1\nIMG_1036.jpg;x\n")
    with pytest.raises(ValueError, match=r"labels\.csv, line 4: label 'x' is a name"):
        read_annotations(sheet, files=POOL)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_byte_order_marks(tmp_path, encoding):
    sheet = tmp_path / "labels.csv"
    sheet.write_bytes("image\tclass\nIMG_1037.jpg\tNaïve\n".encode(encoding))
    assert read_annotations(sheet, files=POOL).tolist() == [-1, "Naïve", -1, -1, -1]


def test_cvat_style_filename_label(tmp_path):
    sheet = tmp_path / "cvat.csv"
    sheet.write_text("FILENAME,CATEGORY\ntrip/IMG_2001.jpg,0\nIMG_1036.jpg,2\n")
    y = read_annotations(sheet, files=POOL)
    assert y.dtype == np.int64 and y.tolist() == [2, -1, -1, 0, -1]


def test_integer_labels_1_and_1_0_are_one_class(tmp_path):
    # the reported case: "1" and "1.0" became two string classes, the CLI failed after training
    sheet = tmp_path / "labels.csv"
    sheet.write_text("file,label\nIMG_1036.jpg,1\nIMG_1037.jpg,1.0\nIMG_1038.jpg, 2 \n")
    y = read_annotations(sheet, files=POOL)
    assert y.dtype == np.int64 and y.tolist() == [1, 1, 2, -1, -1]


def test_integers_mixed_with_names_name_the_row(tmp_path):
    sheet = tmp_path / "labels.csv"
    sheet.write_text("file,label\nIMG_1036.jpg,1\nIMG_1037.jpg,shoe\n")
    with pytest.raises(ValueError, match=r"labels\.csv, line 3: label 'shoe' is a name but "
                                         r".*line 2 has the integer '1'"):
        read_annotations(sheet, files=POOL)


@pytest.mark.parametrize("typo", ["sneakr", "?", "sneaker shoe"])
def test_labels_outside_the_class_list_name_file_row_and_names(tmp_path, typo):
    folder = tmp_path / "to_label"
    folder.mkdir()
    (folder / "class_names.txt").write_text("Sneaker\nShirt\n")
    (folder / "selection.csv").write_text(
        f"file,label,preview\nIMG_1036.jpg,Sneaker ,a.png\nIMG_1037.jpg,{typo},b.png\n")
    with pytest.raises(ValueError, match=rf"selection\.csv, line 3: label '{re.escape(typo)}' is "
                                         r"not one of the class names in .*class_names\.txt: "
                                         r"\['Sneaker', 'Shirt'\]"):
        read_annotations(folder, files=POOL)


def test_class_list_matches_case_insensitively_and_normalises(tmp_path):
    sheet = tmp_path / "labels.csv"
    sheet.write_text("file,label\nIMG_1036.jpg, sneaker \nIMG_1037.jpg,SHIRT\n")
    y = read_annotations(sheet, files=POOL, class_names=["Sneaker", "Shirt"])
    assert y.tolist() == ["Sneaker", "Shirt", -1, -1, -1]
    with pytest.raises(ValueError, match="differ by more than letter case"):
        read_annotations(sheet, files=POOL, class_names=["a", "A"])


def test_label_typos_without_a_class_list_warn_naming_the_rows(tmp_path):
    # before: Sneaker, sneaker and ? silently became three classes
    sheet = tmp_path / "labels.csv"
    sheet.write_text("file,label\nIMG_1036.jpg,Sneaker\nIMG_1037.jpg,sneaker\nIMG_1038.jpg,?\n"
                     "trip/IMG_2001.jpg,Shirt\n")
    with pytest.warns(UserWarning) as record:
        y = read_annotations(sheet, files=POOL)
    message = str(record[0].message)
    assert "labels.csv" in message
    assert "'Sneaker' (line 2) and 'sneaker' (line 3) differ only in case" in message
    assert "'?' (line 4) has no letter or digit" in message
    assert "class_names" in message and "--classes" in message and "Shirt" not in message
    assert y.tolist() == ["Sneaker", "sneaker", "?", "Shirt", -1]  # still read as written
    # a class list settles it: no warning, one class
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = read_annotations(sheet, files=POOL, class_names=["Sneaker", "Shirt", "?"])
        assert y.tolist() == ["Sneaker", "Sneaker", "?", "Shirt", -1]
        # distinct labels and integer spellings of one class are no typos
        sheet.write_text("file,label\nIMG_1036.jpg,1\nIMG_1037.jpg,1.0\nIMG_1038.jpg,2\n")
        assert read_annotations(sheet, files=POOL).tolist() == [1, 1, 2, -1, -1]
        sheet.write_text("file,label\nIMG_1036.jpg,shoe\nIMG_1037.jpg,bag\n")
        assert read_annotations(sheet, files=POOL).tolist() == ["shoe", "bag", -1, -1, -1]


def test_gray_alpha_images_export_as_la_previews(tmp_path):
    X = np.zeros((2, 6, 8, 2), dtype=np.uint8)
    X[..., 1] = 255
    export_for_annotation(X, [1], tmp_path)
    with Image.open(tmp_path / "0000_index1.png") as preview:
        assert preview.mode == "LA" and preview.size == (8, 6)


def test_ambiguous_base_name_is_an_error_naming_file_and_row(tmp_path):
    pool = ["a/IMG_1.jpg", "b/IMG_1.jpg", "c.jpg"]
    sheet = tmp_path / "labels.csv"
    sheet.write_text("file,label\nc.jpg,x\nIMG_1.jpg,y\n")
    with pytest.raises(ValueError, match=r"line 3: the file 'IMG_1\.jpg' is ambiguous: 2 images"
                                         r" in the pool are named 'IMG_1\.jpg' \(a/IMG_1\.jpg, "
                                         r"b/IMG_1\.jpg\)"):
        read_annotations(sheet, files=pool)
    # the relative path, or a longer path ending with it, settles it
    sheet.write_text("file,label\nb/IMG_1.jpg,y\n/home/me/photos/a/IMG_1.jpg,x\n")
    assert read_annotations(sheet, files=pool).tolist() == ["x", "y", -1]


def test_conflicting_labels_for_one_file(tmp_path):
    sheet = tmp_path / "labels.csv"
    # the same answer twice (two annotators, or a copied row) is fine, however it is spelled
    sheet.write_text("file,label\nIMG_1036.jpg,x\nIMG_1037.jpg,y\n./IMG_1036.jpg,X\n"
                     "IMG_1036.jpg,z\n")
    with pytest.raises(ValueError, match=r"line 5: file 'IMG_1036\.jpg' is a duplicate of "
                                         r"line 2 with another label"):
        read_annotations(sheet, files=POOL)


def test_file_names_without_files_argument(tmp_path):
    sheet = tmp_path / "labels.csv"
    sheet.write_text("file,label\nIMG_1036.jpg,x\n")
    with pytest.raises(ValueError, match=r"line 2: the row names the file 'IMG_1036\.jpg'; "
                                         r"pass files="):
        read_annotations(sheet)
    with pytest.raises(ValueError, match=r"files names 5 images but n_samples=3"):
        read_annotations(sheet, n_samples=3, files=POOL)


def test_robustness_errors_name_file_and_line(tmp_path):
    sheet = tmp_path / "labels.csv"
    # a 20-digit integer label: OverflowError before
    sheet.write_text("index,file,label\n1,a.png,12345678901234567890\n")
    with pytest.raises(ValueError, match=r"labels\.csv, line 2: label '12345678901234567890' "
                                         r"is an integer too large for int64"):
        read_annotations(sheet, n_samples=3)
    # a 10 MB cell: csv.Error before
    sheet.write_text("index,file,label\n1,a.png,2\n2,b.png," + "x" * 10_000_000 + "\n")
    with pytest.raises(ValueError, match=r"labels\.csv, line 3: cannot parse the CSV: field "
                                         r"larger than field limit"):
        read_annotations(sheet, n_samples=3)
    # an index of 1e12 with no n_samples: MemoryError before
    sheet.write_text("index,file,label\n1000000000000,a.png,2\n")
    with pytest.raises(ValueError, match=r"line 2: index 1000000000000 is larger than "
                                         r"16777215; pass n_samples"):
        read_annotations(sheet)
    with pytest.raises(ValueError, match=r"line 2: index 1000000000000 is out of range"):
        read_annotations(sheet, n_samples=10)
    sheet.write_text("index,file,label\n1e12,a.png,2\n")
    with pytest.raises(ValueError, match=r"line 2: index '1e12' is not an integer"):
        read_annotations(sheet)
    # a file that is not text at all, and malformed JSON
    (tmp_path / "bad.json").write_text("[{\"image\": ")
    with pytest.raises(ValueError, match=r"bad\.json: cannot parse the JSON"):
        read_annotations(tmp_path / "bad.json", files=POOL)
    (tmp_path / "broken16.csv").write_bytes(b"\xff\xfe" + b"f\x00i\x00\x00\xd8")
    with pytest.raises(ValueError, match=r"broken16\.csv: cannot decode the file as utf-16"):
        read_annotations(tmp_path / "broken16.csv", files=POOL)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: the file is empty"):
        read_annotations(tmp_path / "empty.csv")
    (tmp_path / "all_blank.csv").write_text("file,label\nIMG_1036.jpg,\n")
    with pytest.raises(ValueError, match=r"all_blank\.csv: no annotated rows"):
        read_annotations(tmp_path / "all_blank.csv", files=POOL)


def test_latin1_file_decodes(tmp_path):
    # a latin-1 file: UnicodeDecodeError without the file name before
    sheet = tmp_path / "manifest.csv"
    sheet.write_bytes("index,file,label\n1,a.png,élan\n".encode("latin-1"))
    assert read_annotations(sheet, n_samples=2).tolist() == [-1, "élan"]


def test_write_label_studio_tasks_bad_input(tmp_path):
    with pytest.raises(ValueError, match="classes is required with priors"):
        write_label_studio_tasks(tmp_path / "t.json", ["a.jpg"], priors=[[1.0]])
    with pytest.raises(ValueError, match=r"priors must have shape \(n_files, n_classes\)"):
        write_label_studio_tasks(tmp_path / "t.json", ["a.jpg"], priors=[[1.0]],
                                 classes=["a", "b"])
    with pytest.raises(TypeError, match="files must be a sequence"):
        write_label_studio_tasks(tmp_path / "t.json", "a.jpg")
    with pytest.raises(ValueError, match="files must name at least one image"):
        write_label_studio_tasks(tmp_path / "t.json", [])


def test_export_files_must_name_every_image(tmp_path):
    X = np.zeros((3, 4, 4, 1), np.uint8)
    with pytest.raises(ValueError, match="files must name every image: got 2 names for 3"):
        export_for_annotation(X, [0], tmp_path, files=["a.png", "b.png"])
