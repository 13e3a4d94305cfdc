"""The README's two set-up commands exist, and CI runs the test one verbatim."""
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in readme.splitlines() if ln.startswith("python3 -m venv .venv")]
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "edgepose demo" in main_job and "pytest" in tests
    assert tests in ci.splitlines()
