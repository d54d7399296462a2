"""Run the README's adapter examples as they are written (used by the adapter tests)."""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Tuple

README = Path(__file__).resolve().parents[1] / "README.md"


def example(heading: str) -> Tuple[str, str]:
    """The first ```python block after ``heading`` and the output block that follows it."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    m = re.compile(r"```python\n(.*?)```\n\n```\n(.*?)```", re.S).search(text, start)
    assert m is not None, f"no example after {heading!r}"
    return m.group(1), m.group(2)


def run_example(heading: str, socket_path: str) -> Tuple[str, str]:
    """Run the example against ``socket_path``; returns (its stdout, the README's output)."""
    code, expected = example(heading)
    env = dict(os.environ, MNEMO_SOCKET=socket_path, PYTHONPATH=str(README.parent))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout, expected
