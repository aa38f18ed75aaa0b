"""The Pages deploy workflow, checked from outside: actionlint (from its PyPI wheel) and a YAML parse, and its
own check step run as GitHub would run it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

WORKFLOW = REPO / ".github" / "workflows" / "pages.yml"


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is not installed: pip install -e '.[test]'")
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=120)


def test_actionlint_passes_the_workflow_and_fails_a_broken_one(tmp_path):
    result = lint(WORKFLOW)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    broken = tmp_path / "pages.yml"  # the step as it was: an unquoted ': ' in a plain run: value
    text = WORKFLOW.read_text()
    start, end = text.index("        run: |\n"), text.index("          fi\n") + len("          fi\n")
    broken.write_text(text[:start] + '        run: test -f site/index.html || { echo "site/index.html is missing: '
                      'run python build.py and commit site/"; exit 1; }\n' + text[end:])
    result = lint(broken)
    assert result.returncode == 1 and "could not parse as YAML" in result.stdout


def test_the_workflow_deploys_site_with_current_pages_actions():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as true
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    steps = workflow["jobs"]["deploy"]["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert uses == ["actions/checkout@v6", "actions/configure-pages@v6", "actions/upload-pages-artifact@v5",
                    "actions/deploy-pages@v5"]
    assert next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages"))["with"] == {"path": "site"}


@pytest.mark.parametrize("built", [True, False])
def test_the_check_step_fails_without_a_built_site(tmp_path, built):
    step = next(s for s in yaml.safe_load(WORKFLOW.read_text())["jobs"]["deploy"]["steps"]
                if s.get("name") == "Check that site/ was built")
    if built:
        (tmp_path / "site").mkdir()
        (tmp_path / "site" / "index.html").write_text("<!doctype html>")
    result = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == (0 if built else 1)
    assert ("site/index.html is missing: run dreamer build" in result.stdout) != built


def test_a_new_gallery_gets_this_very_workflow():
    assert (REPO / "dreamer" / "starter" / "pages.yml").read_bytes() == WORKFLOW.read_bytes()
