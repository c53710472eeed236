"""load_image_folder on folders as people have them: links, pipes, phone photos, bad files.

Every picture here is written by the test itself (PIL) in ``tmp_path``.
"""

import gc
import os
import sys
import threading
import warnings

import numpy as np
import pytest
from PIL import Image

from as3l_sklearn.datasets import load_image_folder


def _save(path, array, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _solid(value, shape=(4, 4)):
    return np.full(shape, value, dtype=np.uint8)


needs_symlinks = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges")


@pytest.fixture
def cats_and_dogs(tmp_path):
    for i in range(3):
        _save(tmp_path / "cat" / f"c{i}.png", _solid(10 + i))
        _save(tmp_path / "dog" / f"d{i}.png", _solid(100 + i))
    return tmp_path


@needs_symlinks
def test_symlink_back_to_the_root_neither_duplicates_nor_relabels(cats_and_dogs):
    # the reported case: cat/loop -> .. turned 6 images into 246 and labeled dogs "cat"
    os.symlink("..", cats_and_dogs / "cat" / "loop")
    with pytest.warns(UserWarning, match="loop"):
        bunch = load_image_folder(cats_and_dogs, return_X_y=False)
    assert len(bunch.target) == 6
    assert bunch.files.tolist() == [f"cat/c{i}.png" for i in range(3)] + [
        f"dog/d{i}.png" for i in range(3)]
    assert bunch.target.tolist() == [0, 0, 0, 1, 1, 1]
    assert bunch.images[:, 0, 0, 0].tolist() == [10, 11, 12, 100, 101, 102]


@needs_symlinks
def test_links_between_two_class_folders_terminate(cats_and_dogs):
    # each class folder links to the other: the old walk never ended
    os.symlink(os.path.join("..", "dog"), cats_and_dogs / "cat" / "to_dog")
    os.symlink(os.path.join("..", "cat"), cats_and_dogs / "dog" / "to_cat")
    os.symlink(".", cats_and_dogs / "dog" / "self")
    with pytest.warns(UserWarning, match="already read"):
        X, y = load_image_folder(cats_and_dogs)
    assert y.tolist() == [0, 0, 0, 1, 1, 1]
    # with labels="none" too, every image is read once
    with pytest.warns(UserWarning, match="already read"):
        bunch = load_image_folder(cats_and_dogs, labels="none", return_X_y=False)
    assert sorted(bunch.files.tolist()) == sorted(
        [f"cat/c{i}.png" for i in range(3)] + [f"dog/d{i}.png" for i in range(3)])


@needs_symlinks
def test_a_link_to_a_folder_above_the_root_is_a_loop(tmp_path):
    root = tmp_path / "photos"
    _save(root / "a.png", _solid(1))
    _save(tmp_path / "outside.png", _solid(2))
    os.symlink(tmp_path, root / "up")
    with pytest.warns(UserWarning, match="already read"):
        bunch = load_image_folder(root, labels="none", return_X_y=False)
    assert bunch.files.tolist() == ["a.png"]


@needs_symlinks
def test_a_linked_folder_that_is_not_a_loop_is_read(tmp_path):
    outside = tmp_path / "elsewhere"
    _save(outside / "far.png", _solid(5))
    root = tmp_path / "root"
    _save(root / "near.png", _solid(6))
    os.symlink(outside, root / "linked")
    bunch = load_image_folder(root, labels="none", return_X_y=False)
    assert bunch.files.tolist() == ["linked/far.png", "near.png"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this platform")
def test_fifo_named_png_is_skipped_not_waited_on(tmp_path):
    _save(tmp_path / "a.png", _solid(1))
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock():
        # opening a FIFO for reading blocks until a writer comes: were the loader to open it,
        # this writer lets it go on (to fail) after 3 s instead of hanging the test run
        if done.wait(3):
            return
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            done.wait(0.05)

    helper = threading.Thread(target=unblock, daemon=True)
    helper.start()
    try:
        with pytest.warns(UserWarning, match=r"x\.png.*not a regular file"):
            bunch = load_image_folder(tmp_path, return_X_y=False)
    finally:
        done.set()
        helper.join()
    assert bunch.files.tolist() == ["a.png"]
    assert bunch.skipped == ["x.png"]


def _exif_with_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif


def test_exif_orientation_6_is_turned_upright(tmp_path):
    # stored 32 wide x 16 tall, left half red, right half blue; orientation 6 says "turn 90
    # degrees clockwise to view": upright it is 16 wide x 32 tall with red on top
    stored = np.zeros((16, 32, 3), dtype=np.uint8)
    stored[:, :16, 0] = 255
    stored[:, 16:, 2] = 255
    _save(tmp_path / "phone.jpg", stored, exif=_exif_with_orientation(6), quality=95)
    X, _ = load_image_folder(tmp_path)
    assert X.shape == (1, 32, 16, 3)
    top, bottom = X[0, :14].reshape(-1, 3).mean(0), X[0, 18:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_default_size_counts_the_upright_size(tmp_path):
    # two portrait photos stored landscape with orientation 6, one landscape photo: the most
    # common upright size is the portrait one, read from the headers alone
    for name in ("a.jpg", "b.jpg"):
        _save(tmp_path / name, np.zeros((20, 30, 3), np.uint8), exif=_exif_with_orientation(6))
    _save(tmp_path / "c.jpg", np.zeros((20, 30, 3), np.uint8))
    X, _ = load_image_folder(tmp_path)
    assert X.shape == (3, 30, 20, 3)


def test_big_photos_are_resized_one_at_a_time(tmp_path, monkeypatch):
    # 2000 x 1500 pictures: the old loader held every one at full size before resizing
    gradient = np.linspace(0, 255, 2000, dtype=np.float32).astype(np.uint8)
    photo = np.broadcast_to(gradient[None, :, None], (1500, 2000, 3)).copy()
    for i in range(3):
        _save(tmp_path / f"p{i}.png", photo, compress_level=1)
    _save(tmp_path / "p3.jpg", photo, quality=80)

    real_open = Image.open
    most_alive = []

    def counting_open(*args, **kwargs):
        # full-size pictures still holding pixels when the next file is opened
        gc.collect()
        alive = sum(1 for obj in gc.get_objects()
                    if issubclass(type(obj), Image.Image)
                    and obj.size in ((2000, 1500), (1500, 2000))
                    and getattr(obj, "_im", None) is not None)
        most_alive.append(alive)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", counting_open)
    X, y = load_image_folder(tmp_path)
    assert max(most_alive) == 0
    # default size: the most common size, capped at max_size=256 on the longer side
    assert X.shape == (4, 192, 256, 3)
    np.testing.assert_allclose(X[0, 100, :, 0].astype(float),
                               np.linspace(0, 255, 256), atol=3)
    assert load_image_folder(tmp_path, max_size=100)[0].shape == (4, 75, 100, 3)
    assert load_image_folder(tmp_path, image_size=(10, 20))[0].shape == (4, 10, 20, 3)


def test_jpeg_is_decoded_at_a_reduced_scale(tmp_path, monkeypatch):
    _save(tmp_path / "big.jpg", np.zeros((1600, 2400, 3), np.uint8))
    decoded = []
    real_load = Image.Image.load

    def recording_load(self):
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(Image.Image, "load", recording_load)
    X, _ = load_image_folder(tmp_path, image_size=(100, 150))
    assert X.shape == (1, 100, 150, 3)
    assert max(w * h for w, h in decoded) <= 300 * 200  # 1/8 scale is enough


def test_on_error_warn_skips_unreadable_files(tmp_path):
    _save(tmp_path / "cat" / "good.png", _solid(3))
    (tmp_path / "cat" / "broken.png").write_bytes(b"not a png at all")
    _save(tmp_path / "dog" / "only.jpg", np.zeros((4, 4, 3), np.uint8))
    # a JPEG whose header reads but whose pixels are cut off
    whole = (tmp_path / "dog" / "only.jpg").read_bytes()
    (tmp_path / "dog" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])

    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        load_image_folder(tmp_path)
    with pytest.warns(UserWarning, match=r"skipped unreadable image") as record:
        bunch = load_image_folder(tmp_path, on_error="warn", return_X_y=False)
    messages = " ".join(str(w.message) for w in record)
    assert "broken.png" in messages and "truncated.jpg" in messages
    assert bunch.files.tolist() == ["cat/good.png", "dog/only.jpg"]
    assert bunch.skipped == ["cat/broken.png", "dog/truncated.jpg"]
    assert bunch.target.tolist() == [0, 1]
    with pytest.raises(ValueError, match="on_error"):
        load_image_folder(tmp_path, on_error="ignore")


def test_a_class_whose_images_are_all_unreadable_is_no_class(tmp_path):
    _save(tmp_path / "cat" / "a.png", _solid(3))
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "b.png").write_bytes(b"broken")
    with pytest.warns(UserWarning, match="b.png"):
        bunch = load_image_folder(tmp_path, on_error="warn", return_X_y=False)
    assert bunch.target_names.tolist() == ["cat"]
    (tmp_path / "cat" / "a.png").write_bytes(b"broken too")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no readable image"):
        load_image_folder(tmp_path, on_error="warn")


def test_labels_none_reads_every_image_unlabeled(tmp_path):
    _save(tmp_path / "batch2" / "a.png", _solid(1))
    _save(tmp_path / "nested" / "deeper" / "b.png", _solid(2))
    _save(tmp_path / "c.png", _solid(3))
    _save(tmp_path / "unlabeled" / "d.png", _solid(4))
    bunch = load_image_folder(tmp_path, labels="none", return_X_y=False)
    assert bunch.files.tolist() == ["batch2/a.png", "c.png", "nested/deeper/b.png",
                                    "unlabeled/d.png"]
    assert bunch.target.tolist() == [-1, -1, -1, -1]
    assert bunch.target_names.tolist() == []
    assert [os.path.isabs(f) for f in bunch.filenames] == [True] * 4
    assert bunch.images[:, 0, 0, 0].tolist() == [1, 3, 2, 4]
    # the default stays the documented sub-folder layout
    assert load_image_folder(tmp_path, return_X_y=False).target_names.tolist() == [
        "batch2", "nested"]
    with pytest.raises(ValueError, match="The 'labels' parameter of load_image_folder must be a str among"):
        load_image_folder(tmp_path, labels="folders")


def test_gray_or_rgb_is_read_from_the_headers(tmp_path):
    _save(tmp_path / "a.jpg", _solid(50, (8, 8)))
    _save(tmp_path / "b.png", _solid(60, (8, 8)))
    X, _ = load_image_folder(tmp_path)
    assert X.shape == (2, 8, 8, 1)
    _save(tmp_path / "c.png", np.zeros((8, 8, 3), np.uint8))
    X, _ = load_image_folder(tmp_path)
    assert X.shape == (3, 8, 8, 3)


@pytest.mark.parametrize("max_size", [0, -3, 2.5, "big", True])
def test_max_size_is_checked(tmp_path, max_size):
    _save(tmp_path / "a.png", _solid(1))
    with pytest.raises(ValueError, match="max_size"):
        load_image_folder(tmp_path, max_size=max_size)


def test_max_size_none_keeps_the_common_size(tmp_path):
    _save(tmp_path / "a.png", np.zeros((300, 400), np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image_folder(tmp_path, max_size=None)[0].shape == (1, 300, 400, 1)
        assert load_image_folder(tmp_path)[0].shape == (1, 192, 256, 1)
