"""torch DDP under torchrun: a tiny 2-process CPU (gloo) job.

The test launches this very file with ``python -m torch.distributed.run --standalone
--nproc_per_node=2``; each rank (the ``__main__`` block) fits SimSiam and FlexMatch on the
same tiny data, writes what it ended with to ``<out>/rank<r>.npz``, then runs the ``as3l``
command. The test then checks that both ranks hold identical weights (and identical
parameters after every epoch, before the final broadcast: the gradients were all-reduced),
that each rank saw half of every global batch, and that rank 0 alone wrote the command's
outputs with ``"distributed": {"world_size": 2, "backend": "gloo"}`` in ``report.json``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORLD_SIZE = 2
SIMSIAM_BATCH = 16
FLEXMATCH_BATCH = 4
FLEXMATCH_MU = 2


def _gloo_available() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:
        return False
    return dist.is_available() and dist.is_gloo_available()


def _data():
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, 64)
    X = 0.2 * rng.rand(64, 1, 8, 8).astype(np.float32)
    X[y == 0, :, :4, :] += 0.5
    X[y == 1, :, 4:, :] += 0.5
    return np.clip(X, 0, 1), y


def _run_rank(out: Path) -> None:
    """One rank's work (run by torchrun): two estimator fits, then the command line."""
    from skorch.callbacks import Callback

    from as3l_sklearn import SimSiamEmbedder
    from as3l_sklearn.classification import PriorGuidedFlexMatchClassifier
    from as3l_sklearn.cli import main

    class ParameterDigest(Callback):
        """Sum of the trained parameters after every epoch (before any final broadcast)."""

        def initialize(self):
            self.digests = []
            return self

        def on_epoch_end(self, net, **kwargs):
            self.digests.append(float(sum(p.detach().double().sum() for p in net.module_.parameters())))

    rank = int(os.environ["RANK"])
    X, y_true = _data()
    simsiam_digest = ParameterDigest()
    embedder = SimSiamEmbedder(backbone="small_cnn", projector_dim=16, predictor_dim=8, max_epochs=2,
                               batch_size=SIMSIAM_BATCH, device="cpu", random_state=0, n_threads=1,
                               callbacks=[("digest", simsiam_digest)]).fit(X)
    y = np.full(64, -1)
    y[:8] = y_true[:8]
    flex_digest = ParameterDigest()
    clf = PriorGuidedFlexMatchClassifier(backbone="small_cnn", max_iter=6, eval_every=2, batch_size=FLEXMATCH_BATCH,
                                         mu=FLEXMATCH_MU, device="cpu", random_state=0, n_threads=1,
                                         callbacks=[("digest", flex_digest)]).fit(X, y, X_val=X, y_val=y_true)
    simsiam_batches = [b["train_batch_size"] for row in embedder.net_.history for b in row["batches"]]
    flex_batches = [b["train_batch_size"] for row in clf.net_.history for b in row["batches"]]
    arrays = {f"simsiam/{k}": v.numpy() for k, v in embedder.net_.module_.state_dict().items()}
    arrays.update({f"flexmatch/{k}": v.numpy() for k, v in clf.net_.ema_module_.state_dict().items()})
    arrays.update({
        "simsiam_batches": np.array(simsiam_batches), "flex_batches": np.array(flex_batches),
        "simsiam_digests": np.array(simsiam_digest.digests), "flex_digests": np.array(flex_digest.digests),
        "simsiam_steps": np.array(embedder.n_steps_), "flex_steps": np.array(clf.n_iter_),
        "status": clf.status_, "proba": clf.predict_proba(X), "features": embedder.transform(X),
    })
    np.savez(out / f"rank{rank}.npz", **arrays)
    (out / f"rank{rank}.json").write_text(json.dumps({"simsiam": embedder.distributed_,
                                                      "flexmatch": clf.distributed_,
                                                      "history": clf.history_}, default=str))
    status = main(["--n-train", "120", "--embed-epochs", "1", "--max-iter", "4", "--budget", "10",
                   "--quiet", "--device", "cpu", "--output", str(out / "cli")])
    (out / f"rank{rank}.exit").write_text(str(status))


@pytest.mark.skipif(not _gloo_available(), reason="torch.distributed with the gloo backend is unavailable")
def test_two_process_cpu_job(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch), OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD_SIZE}",
               str(Path(__file__).resolve()), str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in range(WORLD_SIZE)]
    infos = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    # both ranks end with identical weights, buffers, learning status, predictions and history
    for key in ranks[0].files:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
    histories = [[{k: v for k, v in row.items() if k != "seconds"} for row in info["history"]] for info in infos]
    assert histories[0] == histories[1] and len(histories[0]) == 3
    # the parameters already agreed after every epoch, before the final broadcast: DDP
    # all-reduced the gradients
    assert len(ranks[0]["simsiam_digests"]) == 2 and len(ranks[0]["flex_digests"]) == 3
    for info in infos:
        assert info["simsiam"] == info["flexmatch"] == {"world_size": 2, "backend": "gloo"}
    # each rank saw half of every global batch
    assert int(ranks[0]["simsiam_steps"]) == 2 * (64 // SIMSIAM_BATCH)
    assert set(ranks[0]["simsiam_batches"].tolist()) == {SIMSIAM_BATCH // WORLD_SIZE}
    assert ranks[0]["simsiam_batches"].sum() == int(ranks[0]["simsiam_steps"]) * SIMSIAM_BATCH // WORLD_SIZE
    assert int(ranks[0]["flex_steps"]) == 6
    assert set(ranks[0]["flex_batches"].tolist()) == {FLEXMATCH_BATCH // WORLD_SIZE}

    # the command line: rank 0 alone wrote the outputs; the other rank's scratch folder is gone
    assert [(tmp_path / f"rank{r}.exit").read_text() for r in range(WORLD_SIZE)] == ["0", "0"]
    report = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert report["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert (tmp_path / "cli" / "predictions.csv").exists() and (tmp_path / "cli" / "model.joblib").exists()
    assert not list(scratch.glob("as3l-rank*"))
    assert len(list(tmp_path.rglob("report.json"))) == 1


def test_single_process_and_worker_processes_are_not_distributed(monkeypatch):
    import multiprocessing

    import torch.distributed as dist

    from as3l_sklearn.utils._distributed import get_distributed

    if dist.is_available() and dist.is_initialized():
        pytest.skip("a process group is already initialised")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert get_distributed("cpu") is None
    # a joblib/multiprocessing worker of a torchrun rank inherits its environment: not a rank
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    assert get_distributed("cpu") is None
    assert not (dist.is_available() and dist.is_initialized())


if __name__ == "__main__":  # a rank started by torchrun from the test above
    _run_rank(Path(sys.argv[1]))
