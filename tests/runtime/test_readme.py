"""The README's two set-up commands exist, and CI runs the test one verbatim."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in readme.splitlines() if ln.startswith("python3 -m venv .venv")]
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "edgepose demo" in main_job and "pytest" in tests
    assert tests in ci.splitlines()


def readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


@pytest.mark.network
def test_the_first_snippet_runs_on_what_the_main_job_leaves(tmp_path, monkeypatch, capsys):
    """The README's first example names only files the main job (`edgepose demo`) leaves behind."""
    from edgepose.demo import demo_model, detector_model

    monkeypatch.chdir(tmp_path)
    code = readme_python_blocks()[0]
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.splitlines()
    people, shape = out[0].split(" ", 1)
    assert int(people) >= 1 and shape.endswith(", 33, 2)")  # the astronaut, 33 BlazePose keypoints
    assert (tmp_path / "pose.png").stat().st_size > 10_000
    readme = (REPO / "README.md").read_text()
    for model in (demo_model(), detector_model()):  # the paths the README says the demo leaves
        assert f"~/.cache/edgepose/models/{model.name}" in readme
