"""uint8 images stay uint8 (converted per batch); memory maps and lazy image folders stream."""

import pickle

import numpy as np
import pytest

from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier, SupervisedClassifier
from as3l_sklearn.datasets import ImageFolderArray, load_image_folder
from as3l_sklearn.embedding import SimSiamEmbedder
from as3l_sklearn.embedding._simsiam import MONITOR_SAMPLES
from as3l_sklearn.utils import check_images
from as3l_sklearn.utils._image_source import (
    RawImageDataset,
    Uint8Images,
    WorkerBatchReader,
    uint8_batch_to_float,
)

TINY = dict(max_steps=3, batch_size=16, random_state=0, n_threads=1)


@pytest.fixture(scope="module")
def uint8_images():
    return np.random.RandomState(0).randint(0, 256, size=(120, 12, 12, 1), dtype=np.uint8)


@pytest.fixture
def memmap_images(tmp_path, uint8_images):
    path = tmp_path / "images.npy"
    np.save(path, uint8_images)
    return np.load(path, mmap_mode="r")


def test_lazy_check_images_matches_eager_conversion(uint8_images):
    lazy = check_images(uint8_images, lazy=True)
    eager = check_images(uint8_images)
    assert isinstance(lazy, Uint8Images) and lazy.source is uint8_images  # no copy
    assert lazy.shape == eager.shape and lazy.dtype == eager.dtype
    np.testing.assert_array_equal(lazy[5:9], eager[5:9])
    np.testing.assert_array_equal(lazy[np.array([7, 2, 7])], eager[[7, 2, 7]])
    np.testing.assert_array_equal(lazy[3], eager[3])
    assert (lazy.min(), lazy.max()) == (float(eager.min()), float(eager.max()))
    # the per-batch torch conversion gives the same float32 values as the up-front one
    import torch

    np.testing.assert_array_equal(uint8_batch_to_float(torch.from_numpy(uint8_images[:10])).numpy(), eager[:10])
    # grayscale n x H x W
    gray = uint8_images[..., 0]
    np.testing.assert_array_equal(check_images(gray, lazy=True)[:4], check_images(gray)[:4])
    # float input is converted as before
    assert isinstance(check_images(eager, lazy=True), np.ndarray)


def test_lazy_check_images_errors_name_the_argument():
    with pytest.raises(ValueError, match="X_train .* 5 channels"):
        check_images(np.zeros((2, 4, 4, 5), dtype=np.uint8), lazy=True, name="X_train")
    with pytest.raises(ValueError, match="X_train has 1 images but at least 2"):
        check_images(np.zeros((1, 4, 4, 1), dtype=np.uint8), lazy=True, name="X_train", min_samples=2)


def test_simsiam_uint8_results_unchanged_and_input_not_copied(uint8_images, monkeypatch):
    # the features from uint8 input equal those from the same images converted up front
    float_images = uint8_images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    a = SimSiamEmbedder(**TINY).fit(uint8_images)
    b = SimSiamEmbedder(**TINY).fit(float_images)
    np.testing.assert_array_equal(a.transform(uint8_images), b.transform(float_images))
    # and with a resize to the encoder's size (done per batch for uint8 input)
    c = SimSiamEmbedder(image_size=8, **TINY).fit(uint8_images)
    d = SimSiamEmbedder(image_size=8, **TINY).fit(float_images)
    np.testing.assert_array_equal(c.transform(uint8_images), d.transform(float_images))

    # fit never builds the float copy of the whole set
    seen = []
    original = Uint8Images.__getitem__

    def spy(self, key):
        out = original(self, key)
        seen.append(len(out) if out.ndim == 4 else 1)
        return out

    monkeypatch.setattr(Uint8Images, "__getitem__", spy)
    many = np.random.RandomState(2).randint(0, 256, size=(MONITOR_SAMPLES + 100, 8, 8, 1), dtype=np.uint8)
    SimSiamEmbedder(**dict(TINY, max_steps=1)).fit(many).transform(many)
    assert max(seen, default=0) <= MONITOR_SAMPLES  # only the feature monitor's probe images


def test_simsiam_memmap_streams_and_matches_in_memory(memmap_images, uint8_images, monkeypatch):
    reads = []
    original = Uint8Images.raw

    def spy(self, key):
        out = original(self, key)
        assert isinstance(self.source, np.memmap)  # the memmap itself, never an in-memory copy
        reads.append(len(out))
        return out

    monkeypatch.setattr(Uint8Images, "raw", spy)
    embedder = SimSiamEmbedder(**TINY).fit(memmap_images)
    features = embedder.transform(memmap_images)
    assert reads and max(reads) <= 256  # batches (and the monitor probe), not the whole file
    monkeypatch.undo()
    reference = SimSiamEmbedder(**TINY).fit(uint8_images)
    np.testing.assert_array_equal(features, reference.transform(uint8_images))


def test_flexmatch_memmap_matches_in_memory(memmap_images, uint8_images, monkeypatch):
    y = np.full(len(uint8_images), -1)
    y[:12] = np.arange(12) % 3
    params = dict(max_iter=4, batch_size=4, eval_every=2, random_state=0)
    reads = []
    original = Uint8Images.raw

    def spy(self, key):
        out = original(self, key)
        assert isinstance(self.source, np.memmap)  # batches gathered from the memmap itself
        reads.append(len(out))
        return out

    monkeypatch.setattr(Uint8Images, "raw", spy)
    on_disk = PriorGuidedFlexMatchClassifier(**params).fit(memmap_images, y)
    assert reads and max(reads) <= 256  # training batches and prediction chunks only
    monkeypatch.undo()
    in_memory = PriorGuidedFlexMatchClassifier(**params).fit(uint8_images, y)
    np.testing.assert_array_equal(on_disk.predict_proba(memmap_images), in_memory.predict_proba(uint8_images))
    np.testing.assert_array_equal(in_memory.predict_proba(uint8_images),
                                  in_memory.predict_proba(uint8_images.transpose(0, 3, 1, 2) / np.float32(255)))


def _write_folder(root, n=24):
    from PIL import Image

    rng = np.random.RandomState(1)
    pictures = {}
    for i in range(n):
        label = ["cat", "dog", "unlabeled"][i % 3]
        (root / label).mkdir(exist_ok=True)
        picture = rng.randint(0, 256, size=(10, 14, 3), dtype=np.uint8)
        path = root / label / f"{i:03d}.png"
        Image.fromarray(picture).save(path)
        pictures[path] = picture
    return pictures


def test_lazy_image_folder_matches_eager(tmp_path):
    _write_folder(tmp_path)
    X, y = load_image_folder(tmp_path, image_size=(8, 8))
    lazy, y_lazy = load_image_folder(tmp_path, image_size=(8, 8), lazy=True)
    assert isinstance(lazy, ImageFolderArray)
    assert lazy.shape == X.shape and lazy.dtype == np.uint8 and len(lazy) == len(X) and lazy.ndim == 4
    np.testing.assert_array_equal(y_lazy, y)
    np.testing.assert_array_equal(lazy[3], X[3])
    np.testing.assert_array_equal(lazy[-1], X[-1])
    np.testing.assert_array_equal(lazy[2:7], X[2:7])
    np.testing.assert_array_equal(lazy[np.array([5, 0, 5])], X[[5, 0, 5]])
    np.testing.assert_array_equal(lazy[y == 0], X[y == 0])
    np.testing.assert_array_equal(np.asarray(lazy), X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(lazy))[:4], X[:4])
    with pytest.raises(IndexError):
        lazy[len(X)]
    bunch = load_image_folder(tmp_path, image_size=(8, 8), lazy=True, return_X_y=False)
    assert isinstance(bunch.data, ImageFolderArray) and len(bunch.files) == len(X)


def test_lazy_folder_reports_unreadable_file_when_read(tmp_path):
    _write_folder(tmp_path, n=3)
    lazy, _ = load_image_folder(tmp_path, image_size=(8, 8), lazy=True)
    broken = lazy.files[1]
    with open(broken, "r+b") as handle:  # keep the header, drop the pixels
        handle.truncate(60)
    with pytest.raises(ValueError, match="cannot read image .*001.png"):
        lazy[1]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_simsiam_on_lazy_folder_with_workers(tmp_path, num_workers):
    _write_folder(tmp_path)
    X, _ = load_image_folder(tmp_path, image_size=(8, 8))
    lazy, _ = load_image_folder(tmp_path, image_size=(8, 8), lazy=True)
    params = dict(max_steps=2, batch_size=8, random_state=0, n_threads=1)
    embedder = SimSiamEmbedder(num_workers=num_workers, **params).fit(lazy)
    features = embedder.transform(lazy)
    reference = SimSiamEmbedder(**params).fit(X)
    # workers only read: the same batches, augmentations and weights as in memory
    np.testing.assert_array_equal(features, reference.transform(X))
    assert embedder.input_range_["uint8"]


def test_flexmatch_on_lazy_folder(tmp_path):
    _write_folder(tmp_path)
    X, y = load_image_folder(tmp_path, image_size=(8, 8))
    lazy, _ = load_image_folder(tmp_path, image_size=(8, 8), lazy=True)
    params = dict(max_iter=3, batch_size=4, eval_every=3, random_state=0)
    a = PriorGuidedFlexMatchClassifier(**params).fit(lazy, y)
    b = PriorGuidedFlexMatchClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(lazy), b.predict_proba(X))


@pytest.mark.parametrize("estimator", [PriorGuidedFlexMatchClassifier, SupervisedClassifier])
def test_flexmatch_on_lazy_folder_with_workers(tmp_path, estimator, monkeypatch):
    from as3l_sklearn.classification import _net

    # count the steps the workers served, so that a reader never built cannot pass unseen
    served = []
    take = _net.WorkerBatchReader.take
    monkeypatch.setattr(_net.WorkerBatchReader, "take",
                        lambda self, index_arrays: served.append(1) or take(self, index_arrays))
    _write_folder(tmp_path)
    lazy, y = load_image_folder(tmp_path, image_size=(8, 8), lazy=True)
    # four steps in two records: a batch drawn ahead crosses a skorch epoch; X_val is
    # predicted through the workers at every record
    params = dict(max_iter=4, batch_size=4, eval_every=2, random_state=0, n_threads=1)
    if estimator is PriorGuidedFlexMatchClassifier:
        params["mu"] = 2
    fits = [estimator(num_workers=n, **params).fit(lazy, y, X_val=lazy, y_val=y) for n in (0, 2)]
    serial, parallel = fits
    assert len(served) == params["max_iter"]  # one read per step, all by the workers' reader
    # workers only read: the same batches, augmentations and weights as without them
    np.testing.assert_array_equal(parallel.predict_proba(lazy), serial.predict_proba(lazy))
    assert [r["loss"] for r in parallel.history_] == [r["loss"] for r in serial.history_]
    assert parallel.net_._data is None  # the reader and its workers are gone after fit


def test_worker_batch_reader_returns_what_was_asked(uint8_images):
    images = Uint8Images(uint8_images)
    reader = WorkerBatchReader(images, 2)
    try:
        first = (np.array([5, 1, 5]), np.array([9, 0, 3, 7]))
        reader.submit(first)
        other = (np.array([2]),)
        # not the arrays submitted: read now (the submitted ones are collected first)
        (got,) = reader.take(other)
        np.testing.assert_array_equal(got.numpy(), uint8_images[[2]])
        reader.submit(first)
        for got, index in zip(reader.take(first), first):
            np.testing.assert_array_equal(got.numpy(), uint8_images[index])
    finally:
        reader.close()


def test_num_workers_is_validated(uint8_images):
    invalid = r"The 'num_workers' parameter of {} must be an int in the range \[0, inf\). Got {} instead"
    with pytest.raises(ValueError, match=invalid.format("SimSiamEmbedder", "-1")):
        SimSiamEmbedder(num_workers=-1, **TINY).fit(uint8_images)
    with pytest.raises(TypeError, match=invalid.format("SimSiamEmbedder", "1.5")):
        SimSiamEmbedder(num_workers=1.5, **TINY).fit(uint8_images)
    y = np.full(len(uint8_images), -1)
    y[:4] = [0, 1, 0, 1]
    for estimator in (PriorGuidedFlexMatchClassifier, SupervisedClassifier):
        with pytest.raises(ValueError, match=invalid.format(estimator.__name__, "-1")):
            estimator(num_workers=-1, max_iter=1).fit(uint8_images, y)
        with pytest.raises(TypeError, match=invalid.format(estimator.__name__, "1.5")):
            estimator(num_workers=1.5, max_iter=1).fit(uint8_images, y)


def test_raw_dataset_items_are_uint8(uint8_images):
    dataset = RawImageDataset(Uint8Images(uint8_images))
    x, y = dataset[4]
    assert x.dtype.is_floating_point is False and tuple(x.shape) == (12, 12, 1) and y == 0
    np.testing.assert_array_equal(x.numpy(), uint8_images[4])


def test_linear_evaluation_hands_uint8_to_simsiam_unconverted(memmap_images, uint8_images, monkeypatch):
    from as3l_sklearn.classification import LinearEvaluationClassifier

    y = np.full(len(uint8_images), -1)
    y[:30] = np.arange(30) % 3
    embedder = SimSiamEmbedder(**TINY).fit(uint8_images)
    seen = []
    original = SimSiamEmbedder.transform

    def spy(self, X):
        seen.append(type(X))
        return original(self, X)

    monkeypatch.setattr(SimSiamEmbedder, "transform", spy)
    on_disk = LinearEvaluationClassifier(embedder=embedder).fit(memmap_images, y)
    assert seen and all(kind is Uint8Images for kind in seen)  # never a float32 copy
    in_memory = LinearEvaluationClassifier(embedder=embedder).fit(uint8_images, y)
    np.testing.assert_array_equal(on_disk.predict_proba(memmap_images), in_memory.predict_proba(uint8_images))
