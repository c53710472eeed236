"""The ``as3l`` entry point: parse and check the command line, then run the sub-command."""

from __future__ import annotations

import sys

from ._config import PredictConfig
from ._errors import exit_status
from ._parser import parse_command


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``as3l`` console command; returns the exit status.

    ``as3l [run] [options] [PATH]`` runs the chain (see
    :func:`~as3l_sklearn.cli._command.run_command`), ``as3l predict MODEL PATH [PATH ...]
    --output DIR`` applies a saved model. 0: done; 2: a user error (printed without a
    traceback); 130: stopped by Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        config = parse_command(argv)
    except SystemExit as exc:
        return exit_status(exc)
    # The jobs load torch, scikit-learn and the estimators, which takes seconds; imported
    # here, after the command line parsed, so that ``as3l -h`` and a mistyped flag answer
    # at once (the only imports of the package made inside functions, with _parser's checks
    # that need the package: the device, --label-studio-root, the image extensions of
    # ``as3l predict``; and matplotlib in _outputs).
    if isinstance(config, PredictConfig):
        from ._predict import predict

        return predict(config)
    from ._command import run_command

    return run_command(config, command_line=argv)
