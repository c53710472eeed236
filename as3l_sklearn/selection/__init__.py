"""Single-shot selection of the samples to annotate.

:class:`MultiClusterSelector` is AS3L's selector (Sec. 3.2.2): the medoids of the groups of
samples that stay together across ``C`` k-means runs. The baselines and rivals share its API
(``fit(X)``, ``select(n_budget, labeled=None)``, ``fit_select(X, n_budget)``):
:class:`RandomSelector`, :class:`KMedoidsSelector`, :class:`CoresetSelector`,
:class:`TypiClustSelector`, :class:`ProbCoverSelector`, :class:`MaxHerdingSelector` and our
:class:`StableCoverSelector`.
:func:`export_for_annotation` and :func:`read_annotations` carry the selected images to a
person and their labels back.
"""

from ._annotation import export_for_annotation, read_annotations, write_label_studio_tasks
from ._baselines import (
    CoresetSelector,
    KMedoidsSelector,
    ProbCoverSelector,
    RandomSelector,
    TypiClustSelector,
)
from ._maxherding import MaxHerdingSelector
from ._multicluster import MultiClusterSelector
from ._stablecover import StableCoverSelector

__all__ = [
    "CoresetSelector",
    "KMedoidsSelector",
    "MaxHerdingSelector",
    "MultiClusterSelector",
    "ProbCoverSelector",
    "RandomSelector",
    "StableCoverSelector",
    "TypiClustSelector",
    "export_for_annotation",
    "read_annotations",
    "write_label_studio_tasks",
]
