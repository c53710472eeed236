"""What an ``as3l`` run can say about its own result without a test set: the self-checks of
``report.json`` (``self_checks``) as printed lines and as the section of ``report.html``.

The checks (see :func:`as3l_sklearn.classification.check_against_prior` and
:func:`as3l_sklearn.diagnostics.compare_feature_spaces`) use no label of an unlabeled image;
the held-out check uses the user's own labels, each predicted by the graph from the others
(classes with two or more labels only).
"""

from __future__ import annotations


def describe_self_checks(checks: dict) -> list[str]:
    """The self-checks as printed lines: a verdict first, then the figures behind it."""
    lines = [f"self-checks (no test labels used): {trust_verdict(checks)}",
             f"  returned model: {checks['returned_model']}"]
    lines += _classifier_lines(checks.get("classifier"))
    lines += _feature_lines(checks.get("features"))
    training = checks["training"]
    lines.append(f"  FlexMatch steps: {training['flexmatch_steps_run']} run of "
                 f"{training['flexmatch_steps_planned']} planned; machine speed "
                 + (f"{training['slowdown']}x the estimate" if training["slowdown"] else "not measured")
                 + f"; load average {training['load_average'][0]}")
    if training.get("simsiam_stopped_at") is not None:
        lines.append(f"  SimSiam: stopped at step {training['simsiam_stopped_at']:,} of "
                     f"{training['simsiam_steps_planned']:,} (its share of the time budget was spent)")
    return lines


def trust_verdict(checks: dict) -> str:
    """One sentence: how far the returned labels can be trusted, by the checks alone."""
    classifier = checks.get("classifier")
    parts = []
    if classifier:
        parts.append(f"the prior expects {classifier['prior_expected_accuracy']:.0%} of its labels right")
        returned = classifier["candidates"].get(classifier.get("returned", classifier["chosen"]))
        if returned is not None:
            parts.append(f"the returned model agrees with its surest half on "
                         f"{returned['confident_agreement']:.0%}")
    held_out = held_out_summary(checks.get("features"))
    if held_out:
        parts.append(held_out)
    if not parts:
        return "no prior to check against"
    return "; ".join(parts) + " (estimates: a test set is the only measurement)"


def held_out_summary(features: dict | None) -> str | None:
    """``"n of your labels held out one at a time: x% come back"`` for the chosen space."""
    if not features:
        return None
    scores = features["scores"].get(features["choice"], {})
    accuracy, n_held_out = scores.get("held_out_accuracy"), scores.get("n_held_out", 0)
    if accuracy is None or not n_held_out:
        return None
    return f"{n_held_out} of your labels, each held out, come back {accuracy:.0%} right"


def _classifier_lines(classifier: dict | None) -> list[str]:
    if not classifier:
        return []
    lines = []
    needed = classifier["confident_reference"] - classifier["tolerance"]
    for name, entry in classifier["candidates"].items():
        lines.append(f"  {name}: agrees with the surest half of the prior on "
                     f"{entry['confident_agreement']:.1%} (passes at {needed:.1%}), predicts "
                     f"{entry['n_classes_predicted']} classes (largest {entry['largest_class_share']:.0%}), "
                     f"expected accuracy under the prior {entry['expected_accuracy']:.3f} (prior's own "
                     f"{classifier['prior_expected_accuracy']:.3f})"
                     + (", COLLAPSED" if entry["collapsed"] else "")
                     + ("" if entry["passed"] else ": FAILS"))
    return lines


def _feature_lines(features: dict | None) -> list[str]:
    if not features:
        return []
    parts = []
    for name, weight in features["weights"].items():
        scores = features["scores"].get(name, {})
        held_out = scores.get("held_out_accuracy")
        parts.append(f"{name} weight {weight:.2f} (label stability {scores.get('stability', float('nan')):.3f}"
                     + (f", held-out labels {held_out:.0%}" if held_out is not None else "") + ")")
    line = "  prior features: " + ", ".join(parts)
    learned = next(iter(features["weights"]))
    if features["choice"] != learned:
        line += f" -> the learned features ({learned}) lost to {features['choice']}: the prior leans on it"
    return [line]


def classifier_text(classifier: dict) -> str:
    """The summary line of the returned classifier: its test accuracy (if any) and what it is."""
    accuracy = classifier.get("test_accuracy")
    text = f"test accuracy {accuracy:.3f}" if accuracy is not None else "no labeled test set"
    if classifier.get("fell_back"):
        return text + (f" of the model fitted to the prior (the one after {classifier['steps']} "
                       "steps failed the self-checks)")
    if classifier["steps"] == 0:
        return text + " of the model fitted to the prior (no FlexMatch step)"
    return text + f" after {classifier['steps']} steps"
