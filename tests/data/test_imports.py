"""``xfer.data`` is readable without torch (issue 14: dataset tooling and the file primitives it uses
must not pull the deep-learning stack in)."""

import subprocess
import sys


def test_importing_the_dataset_package_does_not_import_torch():
    code = "import sys, xfer.data, xfer.fileio; bad = sorted(m for m in sys.modules if m.split('.')[0] == 'torch'); print(bad[:3])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
