"""Run README examples as they are written (the adapters', and the project docs' examples)."""
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Tuple

CLIENT = Path(__file__).resolve().parents[1]
README = CLIENT / "README.md"
DOCS = CLIENT.parents[1] / "docs"


def example(heading: str, readme: Path = README) -> Tuple[str, str]:
    """The first ```python block after ``heading`` and the output block that follows it."""
    text = readme.read_text(encoding="utf-8")
    start = text.index(heading)
    m = re.compile(r"```python\n(.*?)```\n\n```\n(.*?)```", re.S).search(text, start)
    assert m is not None, f"no example after {heading!r}"
    return m.group(1), m.group(2)


def run_example(heading: str, socket_path: str, readme: Path = README) -> Tuple[str, str]:
    """Run the example against ``socket_path``; returns (its stdout, the README's output)."""
    code, expected = example(heading, readme)
    env = dict(os.environ, MNEMO_SOCKET=socket_path, PYTHONPATH=str(CLIENT))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout, expected
