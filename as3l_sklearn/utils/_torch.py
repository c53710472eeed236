"""torch helpers: ``device="auto"`` resolution and seeding from ``random_state``.

torch is imported inside the functions so that the light parts of the package
(selection, propagation, metrics) never pay its import time.
"""

from __future__ import annotations

from sklearn.utils import check_random_state


def resolve_device(device: str | None = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"`` when CUDA is available, else ``"cpu"``.

    Parameters
    ----------
    device : str or None
        ``"auto"``/``None``, or any string ``torch.device`` accepts (``"cpu"``, ``"cuda:1"``).

    Returns
    -------
    device : str

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


def _seed_from(random_state) -> int:
    """Draw a 31-bit seed from anything ``check_random_state`` accepts."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def seed_torch(random_state) -> int:
    """Seed torch's global generators (CPU and CUDA) from ``random_state``.

    Returns the integer seed used, so callers can derive further generators from it.
    """
    import torch

    seed = _seed_from(random_state)
    torch.manual_seed(seed)
    return seed


def torch_generator(random_state, device: str = "cpu"):
    """A ``torch.Generator`` seeded from ``random_state`` (an int, None or a RandomState)."""
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(_seed_from(random_state))
    return generator

