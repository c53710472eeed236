"""The ``as3l`` command's plan: step counts chosen up front from a time budget, and the time
estimate printed before a run starts. Package-private.

The cost of an optimizer step is a fixed overhead plus a cost per pixel the encoder sees (and
a small one per pixel of each channel beyond the first), both measured for ``small_cnn_2x2``
with the CLI's CPU defaults at 8x8 to 32x32 px (see the constants). Other backbones and CUDA
use rough factors (not measured here); every estimate is printed as an estimate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Seconds per optimizer step = overhead + per_pixel * h * w + per_extra_channel * h * w * (c - 1)
# at the encoder's h x w x c. A step has work that does not shrink with the image (Python,
# the optimizer, the augmentation calls): the former model, proportional to the pixels
# (0.10 s x h * w / 784 for SimSiam), estimated 8 s for SimSiam on the 8x8 digits; an audit's
# default run took 60.5 s, and the re-plan read that as a 7.4x slowdown and cut FlexMatch
# from 540 to 20 steps.
#
# Measured 2026-12-07 on the project's shared 2-core x86-64 machine (no GPU), torch 2.14.1,
# with the CLI's CPU defaults: small_cnn_2x2 at the images' own size, n_threads="auto" (2),
# SimSiam batch 64, FlexMatch batch 64 labeled + 7 x 64 unlabeled, no monitored test set.
# Each stage was fitted with n1 and n2 steps and the cost per step is (t2 - t1) / (n2 - n1),
# so start-up cancels. Pools: the digits (1,257 images 8x8x1,
# as3l_sklearn.datasets.load_digits_images), otherwise 10,000 random uint8 images. Each run
# started after 5 s with the CPU >= 90 % idle; runs during which other processes used 0.1
# core or more were discarded (1-minute load average 0.8-1.6 at the start of the kept runs,
# mostly the previous timing run's own). Seconds per step:
#
#                       8x8x1              16x16x1      28x28x1            32x32x1  32x32x3
#   SimSiam, later      0.045 (200-1000)   0.054        0.089              0.112    0.128
#   SimSiam, first      0.035 0.037        0.040 0.043  0.075 0.073        0.105    0.114 0.121
#   FlexMatch, 5-60     0.064 0.064 0.071  0.179 0.182  0.614 0.581 0.628  0.777    0.840 0.833
#   FlexMatch, later    0.065 (60-400)                  0.585 (40-80)
#
# A SimSiam step costs 7-29 % more after the first 100-200 steps (FlexMatch does not): the
# SimSiam constants are fitted to the later windows (100-500, 100-400, 200-1000 steps), which
# a default run of 1,000 steps mostly consists of; the FlexMatch ones to every window. Fit:
# least squares weighted by 1 / measured (relative error: the small images are where the
# former model failed); the SimSiam fit is within 5 % of its runs, the FlexMatch fit within
# 13 %. At 28x28 it gives 0.092 s (SimSiam) and 0.576 s (FlexMatch), at 8x8 0.043 s and
# 0.064 s; a plain 1,000-step SimSiam fit on the digits took 43.6 s (estimate: 43.3 s).
#
# The FlexMatch constants did not hold in the command's own runs: the probe before training
# measured 1.6-2.4x the estimate in every default run of benchmarks/bench_robust.py (digits
# and Fashion-MNIST, idle machine included), and a default digits run took 128 s for 1,000
# steps against 64 s estimated, so the up-front plan promised FlexMatch steps the probe then
# took away. Measured again on 2026-12-07 by benchmarks/bench_plan_constants.py (the same
# machine, nothing else running; each estimator fitted with 20 and 60 steps, the classifier
# with a prior as the command passes one): FlexMatch 0.147 s (8x8x1), 0.318 (16x16x1), 1.163
# (28x28x1), 1.370 (32x32x1), 1.861 (32x32x3); fitted as below (within 17 % of every run; 28x28
# gives 1.02 s, 8x8 0.14 s). The SimSiam windows of that script (40 steps) were too short to
# read the smaller SimSiam cost reliably, and a 100- against 300-step digits fit gave
# 0.046 s per step (estimate 0.043 s), so the SimSiam constants stayed -- until a default
# Fashion-MNIST run that gave SimSiam FlexMatch's time (4,000 steps planned at 0.092 s) ran
# 0.152 s per step and hit its time limit at step 3,612. Measured again on 2026-12-08 on the
# same machine, idle, with the command's SimSiam and 100- against 400-step windows
# (benchmarks/bench_plan_constants.py --stages simsiam, docs/results/plan_constants_simsiam.md;
# the windows span several epochs, whose ends run the label-free monitors): 0.074 s (8x8x1),
# 0.092 (16x16x1), 0.143 (28x28x1), 0.187 (32x32x1), 0.204 (32x32x3); fitted within 6 %.
#: fixed seconds per SimSiam step, whatever the image size
SIMSIAM_SECONDS_PER_STEP = 0.065
#: SimSiam seconds per step per encoder pixel
SIMSIAM_SECONDS_PER_PIXEL = 1.08e-4
#: SimSiam seconds per step per encoder pixel of each channel beyond the first
SIMSIAM_SECONDS_PER_EXTRA_CHANNEL_PIXEL = 1.35e-5
#: fixed seconds per FlexMatch step, whatever the image size
FLEXMATCH_SECONDS_PER_STEP = 0.060
#: FlexMatch seconds per step per encoder pixel
FLEXMATCH_SECONDS_PER_PIXEL = 1.23e-3
#: FlexMatch seconds per step per encoder pixel of each channel beyond the first
FLEXMATCH_SECONDS_PER_EXTRA_CHANNEL_PIXEL = 2.7e-4
#: seconds per image for everything that passes each image once or a few times: feature
#: extraction, fine-tuning, selection, propagation, pool predictions (measured order of magnitude)
SECONDS_PER_IMAGE = 0.003
#: seconds per image per FlexMatch evaluation of the monitored test set (predict cost)
SECONDS_PER_MONITORED_IMAGE = 0.00046
#: start-up cost of the run: imports, data loading, model building
FIXED_SECONDS = 10.0
#: the image size the per-image costs (SECONDS_PER_IMAGE, SECONDS_PER_MONITORED_IMAGE) hold at
REFERENCE_PIXELS = 28 * 28
#: rough cost of other encoders relative to small_cnn_2x2 at the same pixels (not measured
#: here; the CIFAR ResNet-18 factor is the one stated in as3l_sklearn.nn.auto_backbone_name)
BACKBONE_FACTOR = {"small_cnn_2x2": 1.0, "small_cnn": 1.0, "resnet18_cifar": 40.0, "wrn28_2": 30.0,
                   "resnet18": 10.0}
#: rough speed-up of a CUDA GPU over the measured CPU (not measured on this project's machines)
CUDA_SPEEDUP = 30.0
#: FlexMatch evaluates its monitored test set this many times (``eval_every="auto"``)
MONITOR_EVALUATIONS = 20
#: the CLI monitors at most this many test images (the final accuracy uses all of them)
MAX_MONITORED = 2000
#: fewest steps a stage is planned with, whatever the budget
MIN_STEPS = 20
#: largest share of the remaining budget SimSiam may take (selection quality depends on it, but
#: the classifier is the first result the user waits for)
SIMSIAM_MAX_SHARE = 0.35

#: a re-planned FlexMatch length within this fraction of the planned one keeps the plan
REPLAN_TOLERANCE = 0.1
#: fewest FlexMatch steps worth training when the budget chooses them: under it the run
#: trains none and returns the model fitted to the prior (``max_iter=0``), and says so up
#: front. From the prior-fitted start, short runs end below it: 60 steps on a 1,257-image
#: digits pool, 86.9 % -> 82.4 % test accuracy (one seed); 300 steps at or below it in all
#: four cells of docs/results.md, "Where training starts" (Fashion-MNIST 64.7 % -> 61.1 %);
#: 189 steps of a default Fashion-MNIST run 6.6 points under its prior ("Robustness"), while
#: 573 steps of the default 10,000-image Fashion-MNIST run gained 2.5 points and 1,000 on
#: the digits 3.4. 500 sits between what lost and what gained (it was 100 before those runs).
MIN_USEFUL_FLEXMATCH_STEPS = 500
#: FlexMatch steps timed before training to measure the machine's real speed (after one
#: untimed step, which pays for the first allocations)
PROBE_STEPS = 3
#: machines of the same kind differ: a 28x28 FlexMatch step of the default run took 0.595 s
#: on one 2-core host of this project and 1.16 s on another (docs/cli.md), and the constants
#: above are the slower host's. When the budget leaves fewer FlexMatch steps than the floor
#: at the estimated speed, but at least the floor at this many times that speed, the run
#: keeps FlexMatch's share of the time and lets the probe decide: FlexMatch trains when the
#: measured speed fits the floor, otherwise the classifier is the model fitted to the prior
FASTER_MACHINE_FACTOR = 2.0

#: when the time budget leaves FlexMatch no step (under the floor even on a faster machine),
#: SimSiam takes the time left, up to this many times its default steps: the run's result is
#: then the model fitted to the prior, and the prior is only as good as the features. On
#: 10,000 Fashion-MNIST images, 4,000 steps instead of 1,000 lifted kNN-20 accuracy of the
#: features from 0.825 to 0.849 and the purity of ``f_fine`` from 0.635 to 0.686 (one seed,
#: docs/results.md, "Embedding"); on this project's 2-core CPU the 8-minute default leaves
#: FlexMatch no step at 28x28 px and finished in 2.5-3.5 minutes with 1,000 SimSiam steps.
#: With the time (2,917 steps on 5,000 Fashion-MNIST images, 10 labels, 3 seeds) the prior
#: rose from 64.2 % to 66.4 % on the pool and the returned model from 64.3 % to 66.4 %
#: (docs/results.md, "Robustness of the default run")
SIMSIAM_STEPS_WITHOUT_FLEXMATCH = 4
#: ... but never beyond this many passes over the pool (nor below the default steps): more
#: passes over few images fit SimSiam to them instead of teaching it more. On 300
#: Fashion-MNIST images, 3,011 steps (about 640 passes) gave priors of 53.4 % and 54.8 %
#: (seeds 0, 1) where the default 1,000 (213 passes) gave 60.7 % on seed 1, while on 5,000
#: images 2,917 steps (37 passes) gained 2.3 points over 1,000; the digits' default is 51
#: passes. 100 lies between what gained and the default of the tiny pool, and was chosen
#: after those runs (so the tiny rows of docs/results.md are no blind test of it)
SIMSIAM_MAX_EXTENDED_EPOCHS = 100
#: the SimSiam steps beyond its default (above) are planned at the estimated speed; they stop
#: once SimSiam has run this many times its estimated seconds (a busy machine), so that such
#: a run overruns its budget by at most half of SimSiam's share
SIMSIAM_TIME_LIMIT_FACTOR = 1.5

#: time budgets in seconds of the presets; None means the estimators' full defaults
PRESETS = {
    "fast": {"cpu": 180.0, "cuda": 900.0},
    "default": {"cpu": 480.0, "cuda": None},
    "quality": {"cpu": None, "cuda": None},
}


@dataclass
class Plan:
    """The step counts a run uses and what they are expected to cost."""

    n_images: int
    image_shape: tuple
    encoder_size: tuple
    backbone: str
    device: str
    simsiam_steps: int
    flexmatch_steps: int
    compare: bool
    n_monitored: int
    time_budget: float | None
    seconds: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    #: FlexMatch steps chosen by the budget (not given by the user), and their upper bound
    flexmatch_from_budget: bool = False
    #: no FlexMatch step fits the floor at the estimated speed, but one on a machine up to
    #: :data:`FASTER_MACHINE_FACTOR` faster would: the speed measured before training decides
    flexmatch_if_faster: bool = False
    default_flexmatch_steps: int = 0
    flexmatch_seconds_per_step: float = 0.0
    #: SimSiam's default steps when the plan gave it more (the time FlexMatch cannot use,
    #: :data:`SIMSIAM_STEPS_WITHOUT_FLEXMATCH`): the steps beyond them train only within
    #: :attr:`simsiam_time_limit`. None: SimSiam trains all its steps
    simsiam_default_steps: int | None = None
    #: SimSiam's steps were chosen by the budget (not by --embed-steps / --embed-epochs)
    simsiam_from_budget: bool = False
    #: False for an export run, which stops after selection: FlexMatch is neither printed
    #: nor estimated (its steps are still chosen, as the import run will use them)
    trains_classifier: bool = True
    #: ``--encoder``: the pretrained encoder (architecture, weights, tuned or frozen, the
    #: measured seconds per image of its forward pass); ``simsiam_steps`` are then those of
    #: ``--encoder-tune`` (0: frozen). None: SimSiam from scratch
    encoder: dict | None = None
    #: ``--encoder-compare-simsiam``: SimSiam from scratch trained beside the pretrained
    #: encoder for the feature check (its ``steps``, ``backbone``, ``encoder_size``; None: none)
    simsiam_comparison: dict | None = None

    @property
    def total_seconds(self) -> float:
        return float(sum(self.seconds.values()))

    @property
    def simsiam_time_limit(self) -> float | None:
        """Seconds after which SimSiam's steps beyond its default stop (None: no limit)."""
        if self.simsiam_default_steps is None:
            return None
        return SIMSIAM_TIME_LIMIT_FACTOR * self.seconds["SimSiam"]

    def describe(self) -> str:
        """The plan and its estimate, as printed before the run starts."""
        h, w = self.encoder_size
        budget = ("no time budget (the estimators' full defaults)" if self.time_budget is None
                  else f"time budget {_duration(self.time_budget)}")
        flexmatch = (("FlexMatch none at the estimated speed (measured before training)"
                      if self.flexmatch_if_faster else
                      "FlexMatch none (the classifier is the model fitted to the prior)"
                      if self.flexmatch_steps == 0 else f"FlexMatch {self.flexmatch_steps:,} steps")
                     if self.trains_classifier else "no FlexMatch (export only: stops after the selection)")
        flexmatch += " (twice: --compare)" if self.compare and self.trains_classifier else ""
        lines = [
            f"plan: {self.n_images:,} images {'x'.join(str(s) for s in self.image_shape)}, "
            + (f"pretrained encoder {self.encoder['architecture']} ({self.encoder['weights']})"
               if self.encoder else "backbone " + self.backbone)
            + f" at {h}x{w} px, device {self.device}",
            f"      {self._simsiam_phrase()}, {flexmatch}; {budget}",
            f"      estimated time: about {_duration(self.total_seconds)} (a rough estimate from "
            "per-step costs measured on a 2-core CPU; shared or faster machines differ)",
        ]
        lines += [f"      note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _simsiam_phrase(self) -> str:
        if self.encoder is None:
            if self.simsiam_default_steps is not None:
                return (f"SimSiam {self.simsiam_steps:,} steps (FlexMatch's time; those beyond "
                        f"{self.simsiam_default_steps:,} stop if SimSiam runs past "
                        f"{_duration(self.simsiam_time_limit)})")
            return f"SimSiam {self.simsiam_steps:,} steps"
        phrase = (f"encoder tuned by SimSiam from its weights for {self.simsiam_steps:,} steps"
                  if self.simsiam_steps else "encoder frozen (no SimSiam training)")
        if self.simsiam_comparison is not None:
            phrase += (f", SimSiam from scratch {self.simsiam_comparison['steps']:,} steps for "
                       "the feature check")
        return phrase

    def as_dict(self) -> dict:
        return {"encoder": self.encoder, "simsiam_comparison": self.simsiam_comparison,
                "simsiam_steps": self.simsiam_steps, "flexmatch_steps": self.flexmatch_steps,
                "simsiam_time_limit_seconds": (None if self.simsiam_time_limit is None
                                               else round(self.simsiam_time_limit, 1)),
                "flexmatch_if_faster": self.flexmatch_if_faster, "backbone": self.backbone,
                "encoder_size": list(self.encoder_size),
                "device": self.device, "time_budget_seconds": self.time_budget,
                "n_monitored_test_images": self.n_monitored,
                "estimated_seconds": {k: round(v, 1) for k, v in self.seconds.items()},
                "estimated_total_seconds": round(self.total_seconds, 1), "notes": list(self.notes)}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def encoder_size(image_shape, image_size, max_side: int) -> tuple:
    """(height, width) the encoder sees: ``--image-size`` as a square, or the images' own
    size scaled down (aspect kept) so that the longer side is at most ``max_side``."""
    if image_size is not None:
        return (int(image_size), int(image_size))
    height, width = int(image_shape[0]), int(image_shape[1])
    longest = max(height, width)
    if longest <= max_side:
        return (height, width)
    scale = max_side / longest
    return (max(1, round(height * scale)), max(1, round(width * scale)))


def seconds_per_step(size, channels: int, overhead: float, per_pixel: float,
                     per_extra_channel_pixel: float) -> float:
    """Seconds of one optimizer step at encoder ``size`` (height, width) and ``channels``:
    a fixed ``overhead`` plus the per-pixel costs (see the measured constants above)."""
    pixels = int(size[0]) * int(size[1])
    return overhead + per_pixel * pixels + per_extra_channel_pixel * pixels * (channels - 1)


def make_plan(*, n_images, image_shape, size, backbone, device, time_budget, compare, n_test,
              simsiam_steps=None, flexmatch_steps=None, default_simsiam_steps,
              default_flexmatch_steps, trains_classifier=True, extend_simsiam=True,
              flexmatch_fits=True, simsiam_batch=64) -> Plan:
    """Choose the step counts that fit ``time_budget`` (seconds, or None for the defaults).

    Explicit ``simsiam_steps`` / ``flexmatch_steps`` (from ``--embed-steps`` / ``--max-iter``) are
    kept as given; the budget is shared between the stages left to choose. With
    ``trains_classifier=False`` (an export run) the steps are chosen the same way, so that the
    import run reuses the cached SimSiam stage, but FlexMatch is left out of the estimate.
    ``extend_simsiam``: when FlexMatch gets no step, SimSiam may take up to
    :data:`SIMSIAM_STEPS_WITHOUT_FLEXMATCH` times its default steps and at most
    :data:`SIMSIAM_MAX_EXTENDED_EPOCHS` passes over the ``n_images`` in batches of
    ``simsiam_batch`` (False: its default at most).
    ``flexmatch_fits=False``: the speed measured before SimSiam (:func:`measures_before_simsiam`)
    leaves FlexMatch under the floor: the budget plans none, and SimSiam takes its time.
    """
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    # the per-step costs were measured for small_cnn_2x2 on the CPU: other encoders and CUDA
    # scale the whole step by their rough factor
    step_factor = BACKBONE_FACTOR.get(backbone, 10.0) / (CUDA_SPEEDUP if kind == "cuda" else 1.0)
    # the per-image work (features, predictions) scales with the pixels too
    factor = step_factor * size[0] * size[1] / REFERENCE_PIXELS
    channels = int(image_shape[-1]) if len(image_shape) == 3 else 1
    simsiam_step = step_factor * seconds_per_step(
        size, channels, SIMSIAM_SECONDS_PER_STEP, SIMSIAM_SECONDS_PER_PIXEL,
        SIMSIAM_SECONDS_PER_EXTRA_CHANNEL_PIXEL)
    flexmatch_step = step_factor * (2 if compare else 1) * seconds_per_step(
        size, channels, FLEXMATCH_SECONDS_PER_STEP, FLEXMATCH_SECONDS_PER_PIXEL,
        FLEXMATCH_SECONDS_PER_EXTRA_CHANNEL_PIXEL)
    n_monitored = min(n_test, MAX_MONITORED)
    per_image = SECONDS_PER_IMAGE * max(1.0, factor)
    fixed = {
        "start, load, features, fine-tune, select, propagate, predict": FIXED_SECONDS + per_image * n_images,
        "monitor test accuracy": SECONDS_PER_MONITORED_IMAGE * max(1.0, factor) * n_monitored
        * MONITOR_EVALUATIONS * (2 if compare else 1),
    }
    sim, flex, notes, if_faster = choose_steps(
        time_budget, fixed, simsiam_step, flexmatch_step, simsiam_steps, flexmatch_steps,
        default_simsiam_steps, default_flexmatch_steps, trains_classifier,
        max_simsiam_steps=(extended_simsiam_steps(n_images, simsiam_batch, default_simsiam_steps)
                           if extend_simsiam else default_simsiam_steps),
        flexmatch_fits=flexmatch_fits)
    if kind == "cuda" or BACKBONE_FACTOR.get(backbone) is None or backbone not in ("small_cnn", "small_cnn_2x2"):
        notes.append("per-step costs were measured for the small CNN on a CPU only; this "
                     "estimate uses a rough factor")
    seconds = dict(fixed)
    seconds["SimSiam"] = sim * simsiam_step
    seconds["FlexMatch"] = flex * flexmatch_step
    if not trains_classifier:
        del seconds["FlexMatch"], seconds["monitor test accuracy"]
    return Plan(n_images=n_images, image_shape=tuple(image_shape), encoder_size=tuple(size),
                backbone=backbone, device=device, simsiam_steps=int(sim), flexmatch_steps=int(flex),
                compare=compare, n_monitored=n_monitored, time_budget=time_budget, seconds=seconds,
                notes=notes, flexmatch_from_budget=time_budget is not None and flexmatch_steps is None,
                flexmatch_if_faster=if_faster, default_flexmatch_steps=int(default_flexmatch_steps),
                flexmatch_seconds_per_step=flexmatch_step, trains_classifier=trains_classifier,
                simsiam_default_steps=(int(default_simsiam_steps) if sim > default_simsiam_steps
                                       and simsiam_steps is None else None),
                simsiam_from_budget=time_budget is not None and simsiam_steps is None)


def extended_simsiam_steps(n_images: int, batch: int, default_steps: int) -> int:
    """The most SimSiam steps a plan without FlexMatch gives SimSiam: up to
    :data:`SIMSIAM_STEPS_WITHOUT_FLEXMATCH` times its default, within
    :data:`SIMSIAM_MAX_EXTENDED_EPOCHS` passes over the pool, never under the default."""
    passes = SIMSIAM_MAX_EXTENDED_EPOCHS * max(1, int(n_images) // max(1, int(batch)))
    return int(max(default_steps, min(SIMSIAM_STEPS_WITHOUT_FLEXMATCH * default_steps, passes)))


def choose_steps(time_budget, fixed: dict, simsiam_step: float, flexmatch_step: float,
                 simsiam_steps, flexmatch_steps, default_simsiam_steps: int,
                 default_flexmatch_steps: int, trains_classifier: bool, max_simsiam_steps=None,
                 flexmatch_fits=True):
    """``(simsiam_steps, flexmatch_steps, notes, if_faster)`` that fit ``time_budget`` (seconds,
    None: the defaults) after the ``fixed`` costs, at the given seconds per step; steps given
    (not None) are kept. SimSiam takes at most :data:`SIMSIAM_MAX_SHARE` of the rest while
    FlexMatch is chosen too, and all of it when FlexMatch falls under the useful floor even
    on a faster machine (then up to ``max_simsiam_steps``, default: its default steps);
    ``if_faster``: under the floor at the estimated speed, over it at
    :data:`FASTER_MACHINE_FACTOR` times that speed (FlexMatch's time is kept for the probe;
    ``flexmatch_fits=False``: the probe said no, FlexMatch gets none and SimSiam its time)."""
    notes = []
    max_simsiam_steps = default_simsiam_steps if max_simsiam_steps is None else max_simsiam_steps
    sim, flex, if_faster = simsiam_steps, flexmatch_steps, False

    def all_the_time():  # SimSiam's steps when no FlexMatch step is left to make time for
        return int(min(max_simsiam_steps, max(MIN_STEPS, remaining / simsiam_step)))

    if time_budget is None:
        sim = default_simsiam_steps if sim is None else sim
        flex = default_flexmatch_steps if flex is None else flex
        return sim, flex, notes, if_faster
    remaining = time_budget - sum(fixed.values())
    if flex is None and not flexmatch_fits:
        flex = 0  # measured: under the floor (the caller says why)
        if sim is None:
            sim = all_the_time()
    if sim is None:
        share = remaining if flex is not None else SIMSIAM_MAX_SHARE * remaining
        if flex is not None:
            share -= flex * flexmatch_step
        sim = int(min(default_simsiam_steps, max(MIN_STEPS, share / simsiam_step)))
    if flex is None:
        left = remaining - sim * simsiam_step
        flex = int(min(default_flexmatch_steps, max(0.0, left / flexmatch_step)))
        if flex < MIN_USEFUL_FLEXMATCH_STEPS:
            # an export run plans as its import run will (the same SimSiam steps: the cache)
            if_faster = flex * FASTER_MACHINE_FACTOR >= MIN_USEFUL_FLEXMATCH_STEPS
            if trains_classifier:
                notes.append(_below_floor_note(flex, if_faster))
            flex = 0
            if simsiam_steps is None and not if_faster:
                # no training to leave time for: SimSiam takes it (in an export run too, so
                # that the import run finds the same SimSiam in the stage cache)
                sim = all_the_time()
    shortest = sum(fixed.values()) + MIN_STEPS * simsiam_step
    if time_budget < shortest:
        notes.append(f"the time budget ({_duration(time_budget)}) is below the shortest run "
                     f"({_duration(shortest)})"
                     + (f"; using {MIN_STEPS} SimSiam steps" if simsiam_step > 0 else ""))
    return sim, flex, notes, if_faster


#: what a run planned without FlexMatch can do about it
MORE_TIME = "(more time: --time-budget SECONDS or --preset quality)"


def _below_floor_note(steps: int, if_faster: bool) -> str:
    floor = MIN_USEFUL_FLEXMATCH_STEPS
    if if_faster:
        return (f"at the estimated speed the time budget leaves {steps} FlexMatch steps, under the "
                f"{floor} that training needs to improve on its start; the speed is measured before "
                f"training: if {floor} steps fit, FlexMatch trains, otherwise the classifier is the "
                f"model fitted to the prior pseudo-labels {MORE_TIME}")
    return (f"the time budget leaves {steps} FlexMatch steps, under the {floor} that training "
            "needs to improve on its start: the classifier will be the model fitted to the prior "
            f"pseudo-labels {MORE_TIME}")


def plan_measures_speed(plan: Plan) -> bool:
    """Whether the run times a few FlexMatch steps before training to re-plan them: the budget
    chose them, and some are planned (or would be on a faster machine)."""
    return plan.flexmatch_from_budget and (plan.flexmatch_steps > 0 or plan.flexmatch_if_faster)


def measures_before_simsiam(plan: Plan) -> bool:
    """Whether the run times a few FlexMatch steps before SimSiam: the budget left FlexMatch
    under the floor at the estimated speed but over it on a faster machine, and SimSiam's
    steps are the budget's to choose (the time FlexMatch cannot use goes to SimSiam)."""
    return (plan.flexmatch_from_budget and plan.flexmatch_if_faster and plan.encoder is None
            and plan.simsiam_from_budget)


def replan_flexmatch(plan: Plan, measured_step_seconds: float):
    """FlexMatch steps that keep the time budget at the measured speed of a FlexMatch step.

    The machine's real speed (a busy shared machine runs several times slower than the
    measured constants) is read from a few FlexMatch steps timed just before training
    (:data:`PROBE_STEPS`). The whole run is then charged at that speed: the stages before
    FlexMatch at their estimates times the slowdown (whether they ran or came from the stage
    cache, so one command plans the same steps either way), FlexMatch at the measured step.
    Under :data:`MIN_USEFUL_FLEXMATCH_STEPS` it trains none; a plan of none at the estimated
    speed (``plan.flexmatch_if_faster``) trains when the measured speed fits the floor.
    Returns ``(steps, slowdown)``; the plan's steps when the budget did not choose them, or
    when the change is within :data:`REPLAN_TOLERANCE`.
    """
    one_step = plan.flexmatch_seconds_per_step / (2 if plan.compare else 1)
    slowdown = min(max(measured_step_seconds / one_step, 0.1), 50.0) if one_step > 0 else 1.0
    if not plan_measures_speed(plan):
        return plan.flexmatch_steps, slowdown
    before = sum(v for k, v in plan.seconds.items() if k != "FlexMatch") * slowdown
    left = plan.time_budget - before
    steps = int(min(plan.default_flexmatch_steps,
                    max(0.0, left / (plan.flexmatch_seconds_per_step * slowdown))))
    if steps < MIN_USEFUL_FLEXMATCH_STEPS:
        return 0, slowdown
    if plan.flexmatch_steps and abs(steps - plan.flexmatch_steps) <= REPLAN_TOLERANCE * plan.flexmatch_steps:
        return plan.flexmatch_steps, slowdown  # within the estimate's own noise: keep the plan
    return steps, slowdown


#: a training step (forward and backward) costs about this many forward passes of its images
#: (the usual rule of thumb: the backward pass costs about twice the forward one)
TRAIN_PASSES = 3.0
#: images of one FlexMatch step: batch 64 labeled, 7 x 64 unlabeled in a weak and a strong view
FLEXMATCH_IMAGES_PER_STEP = 64 * (1 + 2 * 7)
#: passes over the pool with the pretrained encoder besides training: its features, the
#: classifier's frozen features for the head fitted to the prior, the pool's predictions
ENCODER_POOL_PASSES = 3


def make_encoder_plan(*, n_images, image_shape, size, encoder: dict, device, time_budget,
                      compare, n_test, seconds_per_image: float, simsiam_batch: int,
                      tune: bool, tune_steps=None, flexmatch_steps=None, default_tune_steps,
                      default_flexmatch_steps, comparison: Plan | None = None,
                      trains_classifier=True) -> Plan:
    """The plan of a run with a pretrained encoder (``--encoder``), its costs from the
    ``seconds_per_image`` of one forward pass measured on this machine just before.

    Frozen (``tune=False``): no SimSiam step, its time goes to FlexMatch. ``comparison``: the
    plan of SimSiam from scratch trained beside it (``--encoder-compare-simsiam``), whose
    SimSiam time is a fixed cost here. Steps are then chosen as :func:`make_plan` does.
    """
    n_monitored = min(n_test, MAX_MONITORED)
    fixed = {
        "start, load, features, fine-tune, select, propagate, predict":
            FIXED_SECONDS + SECONDS_PER_IMAGE * n_images
            + seconds_per_image * (ENCODER_POOL_PASSES * n_images + n_test),
        "monitor test accuracy": seconds_per_image * n_monitored * MONITOR_EVALUATIONS
        * (2 if compare else 1),
    }
    if comparison is not None:
        fixed["SimSiam from scratch (feature check)"] = comparison.seconds["SimSiam"]
    tune_step = TRAIN_PASSES * 2 * simsiam_batch * seconds_per_image  # two views per image
    flexmatch_step = ((2 if compare else 1) * TRAIN_PASSES * FLEXMATCH_IMAGES_PER_STEP
                      * seconds_per_image)
    sim, flex, notes, if_faster = choose_steps(
        time_budget, fixed, tune_step if tune else 0.0, flexmatch_step,
        tune_steps if tune else 0, flexmatch_steps, default_tune_steps,
        default_flexmatch_steps, trains_classifier)
    notes.append(f"costs from a forward pass of {encoder['architecture']} measured now "
                 f"({seconds_per_image * 1000:.1f} ms per image; a training step is counted as "
                 f"{TRAIN_PASSES:g} passes of its images)")
    seconds = dict(fixed, SimSiam=sim * tune_step, FlexMatch=flex * flexmatch_step)
    if not trains_classifier:
        del seconds["FlexMatch"], seconds["monitor test accuracy"]
    return Plan(n_images=n_images, image_shape=tuple(image_shape), encoder_size=tuple(size),
                backbone=encoder["architecture"], device=device, simsiam_steps=int(sim),
                flexmatch_steps=int(flex), compare=compare, n_monitored=n_monitored,
                time_budget=time_budget, seconds=seconds, notes=notes,
                flexmatch_from_budget=time_budget is not None and flexmatch_steps is None,
                flexmatch_if_faster=if_faster, default_flexmatch_steps=int(default_flexmatch_steps),
                flexmatch_seconds_per_step=flexmatch_step, trains_classifier=trains_classifier,
                encoder=dict(encoder, frozen=not tune, seconds_per_image=round(seconds_per_image, 5)),
                simsiam_comparison=None if comparison is None else {
                    "steps": comparison.simsiam_steps, "backbone": comparison.backbone,
                    "encoder_size": list(comparison.encoder_size)})
