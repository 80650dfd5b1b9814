"""Started by ``python -m adapt doctor`` in the program it runs (this folder
is put first on ``PYTHONPATH``): watch every loop the program starts, then
run the ``sitecustomize`` this module hides, if there is one."""

import importlib.util
import os
import sys


def _doctor() -> None:
    try:
        from adapt._monitor._hooks import install_from_env
    except ImportError as exc:
        sys.stderr.write(
            f"adapt doctor: cannot import adapt in this interpreter ({exc}); "
            f"run the program with a Python that has adapt installed\n"
        )
        return
    install_from_env()


def _chain() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        path = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(path):
            spec = importlib.util.spec_from_file_location("_adapt_hidden_sitecustomize", path)
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return


_doctor()
_chain()
