"""clip_benchmark's own command line, run as it is, with one workaround: its accuracy() calls
float() on a one-element array, which NumPy 2 refuses ("only 0-dimensional arrays can be
converted to Python scalars"); the module's `float` is given a one-element array as a scalar."""

import builtins
import sys

import numpy as np
from clip_benchmark.cli import main
from clip_benchmark.metrics import zeroshot_classification


def _float(value):
    return builtins.float(np.asarray(value).reshape(()) if isinstance(value, np.ndarray) else value)


zeroshot_classification.float = _float

if __name__ == "__main__":
    sys.exit(main())
