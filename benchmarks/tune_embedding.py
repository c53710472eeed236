"""Tuning runs for the SimSiam CPU defaults, on a split disjoint from the benchmark's.

Plain torch loop over this package's parts (backbone, heads, loss, augmentation) on
Fashion-MNIST training images 50,000-59,999 (``--offset``); ``bench_embedding.py`` reports on
images 0-9,999. Each run appends one JSON line (settings, training seconds, leave-one-out
cosine kNN-20 accuracy of the encoder features on the 10,000 tuning images, and a curve on
their first 2,000 every ``--eval-every`` steps) to ``benchmarks/results/tune_embedding.jsonl``.
The rate ``--lr`` is the SGD rate itself (no batch rule) and the schedule is a cosine to 0
over ``--steps`` (``--warmup`` linear steps first). The runs behind the defaults are listed in
``docs/results.md``. Example::

    python benchmarks/tune_embedding.py --batch 64 --lr 0.1 --steps 1000 --pool 2 --crop 0.4 --threads 1
"""
import argparse, json, math, time, sys
from pathlib import Path
import numpy as np, torch
p = argparse.ArgumentParser()
p.add_argument("--n", type=int, default=10000)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--lr", type=float, default=0.1)   # SGD lr actually used
p.add_argument("--steps", type=int, default=600)
p.add_argument("--wd", type=float, default=5e-4)
p.add_argument("--warmup", type=int, default=0)
p.add_argument("--crop", type=float, default=0.2)
p.add_argument("--jitter", type=float, default=0.4)
p.add_argument("--jitter-p", type=float, default=0.8)
p.add_argument("--flip", type=float, default=0.5)
p.add_argument("--proj", type=int, default=512)
p.add_argument("--pred", type=int, default=128)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--offset", type=int, default=50000)
p.add_argument("--eval-every", type=int, default=0)
p.add_argument("--cl", type=int, default=0)
p.add_argument("--backbone", default="small_cnn")
p.add_argument("--tag", default="")
p.add_argument("--pool", type=int, default=1)
p.add_argument("--table", action="store_true", help="only render the runs so far as docs/results/tune_embedding.md")
a = p.parse_args()
if a.table:
    ROOT = Path(__file__).resolve().parent.parent
    runs = [json.loads(line) for line in (ROOT / "benchmarks" / "results" / "tune_embedding.jsonl").read_text().splitlines()]
    lines = ["# SimSiam CPU tuning runs (Fashion-MNIST training images 50,000-59,999)", "",
             "Each row is one run of `benchmarks/tune_embedding.py` (seed 0, one torch thread on a shared 2-core "
             "x86-64 CPU, no GPU, torch 2.14.1); `knn20` is the leave-one-out cosine kNN-20 accuracy of the encoder "
             "features on the 10,000 tuning images (raw pixels: 0.798); `curve` is kNN-20 on their first 2,000 "
             "(raw pixels: 0.737) every few hundred steps. `lr` is the SGD rate itself.", "",
             "| backbone pooling | batch | lr | warm-up | steps | crop | jitter | train s | knn20 | curve (step: kNN-20 on 2,000) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        curve = ", ".join(f"{step}: {acc:.3f}" for step, acc, _ in r["curve"])
        pooling = "2x2" if r.get("pool", 1) == 2 else "global"
        lines.append(f"| {pooling} | {r['batch']} | {r['lr']} | {r['warmup']} | {r['steps']} | {r['crop']}-1 | "
                     f"{r['jitter']} | {r['train_s']} | {r['knn']} | {curve} |")
    (ROOT / "docs" / "results" / "tune_embedding.md").write_text("\n".join(lines) + "\n")
    sys.exit(0)
torch.set_num_threads(a.threads)
from as3l_sklearn.datasets import load_fashion_mnist
from as3l_sklearn.nn import make_backbone, SimSiamProjector, SimSiamPredictor, simsiam_loss
from as3l_sklearn.augment import SimSiamAugment
from as3l_sklearn.embedding._simsiam import knn_loo_accuracy
X, y = load_fashion_mnist(split="train")
X = X[a.offset:a.offset + a.n]; y = y[a.offset:a.offset + a.n]
x = torch.from_numpy(X.reshape(len(X), 1, 28, 28).astype(np.float32) / 255)
torch.manual_seed(a.seed)
enc = make_backbone(a.backbone, in_channels=1, image_size=28)
if a.pool > 1:
    enc.pool = torch.nn.AdaptiveAvgPool2d(a.pool); enc.out_dim = enc.out_dim * a.pool * a.pool
proj = SimSiamProjector(enc.out_dim, a.proj, a.proj); pred = SimSiamPredictor(a.proj, a.pred)
model = torch.nn.ModuleList([enc, proj, pred])
if a.cl: enc.to(memory_format=torch.channels_last)
aug = SimSiamAugment(28, 1, crop_scale=(a.crop, 1.0), flip_p=a.flip, jitter=(a.jitter, a.jitter, 0, 0), jitter_p=a.jitter_p)
opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.wd)
g = torch.Generator().manual_seed(a.seed)
def feats(xx):
    enc.eval()
    with torch.no_grad():
        f = torch.cat([enc(xx[i:i+1000]) for i in range(0, len(xx), 1000)]).numpy()
    enc.train(); return f
curve = []
t0 = time.perf_counter(); step = 0; ev = 0.0
while step < a.steps:
    perm = torch.randperm(len(x), generator=g)
    for s in range(0, len(x) - a.batch + 1, a.batch):
        if step >= a.steps: break
        lr = a.lr * (step + 1) / a.warmup if step < a.warmup else a.lr * 0.5 * (1 + math.cos(math.pi * (step - a.warmup) / max(1, a.steps - a.warmup)))
        for gr in opt.param_groups: gr["lr"] = lr
        b = x[perm[s:s+a.batch]]
        v1, v2 = aug(b, generator=g), aug(b, generator=g)
        if a.cl: v1 = v1.contiguous(memory_format=torch.channels_last); v2 = v2.contiguous(memory_format=torch.channels_last)
        z1, z2 = proj(enc(v1)), proj(enc(v2))
        loss = simsiam_loss(pred(z1), pred(z2), z1, z2)
        opt.zero_grad(); loss.backward(); opt.step(); step += 1
        if a.eval_every and step % a.eval_every == 0:
            te = time.perf_counter()
            curve.append((step, round(knn_loo_accuracy(feats(x[:2000]), y[:2000]), 4), round(float(loss), 3)))
            ev += time.perf_counter() - te
            print(curve[-1], flush=True)
train_s = time.perf_counter() - t0 - ev
F = feats(x)
res = dict(vars(a), train_s=round(train_s, 1), knn=round(knn_loo_accuracy(F, y), 4), loss=round(float(loss), 4), curve=curve,
           std_enc=float(torch.nn.functional.normalize(torch.from_numpy(F), dim=1).std(0).mean()))
print(json.dumps(res), flush=True)
open(Path(__file__).resolve().parent / "results" / "tune_embedding.jsonl", "a").write(json.dumps(res) + "\n")
