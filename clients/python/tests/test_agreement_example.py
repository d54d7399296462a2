"""The project README's agreement example, run as written against a real daemon."""
from readme_blocks import PROJECT_README, run_example


def test_readme_agreement_example_runs_as_written(mnemod: str) -> None:
    out, expected = run_example("## Agreement before acting", mnemod, PROJECT_README)
    assert out == expected
