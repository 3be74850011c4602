"""Whether inductor can generate code for the CPU here."""
import os
import shutil

import pytest

#: skips a test (or, as ``pytestmark``, a module) that compiles for the CPU
#: with inductor when no C++ compiler is installed
NEEDS_CXX = pytest.mark.skipif(
    shutil.which(os.environ.get('CXX', 'g++')) is None,
    reason='inductor needs a C++ compiler on the CPU')
