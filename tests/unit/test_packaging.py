"""docker-compose.yml and the local services script agree with each other and with the CLI."""

import re
from pathlib import Path

import yaml

from semsearch.cli.commands import main

ROOT = Path(__file__).resolve().parents[2]


def test_compose_is_valid_and_uses_the_scripts_opensearch_version():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"opensearch", "redis", "worker", "flower"} <= set(services)
    script_version = re.search(r'^OPENSEARCH_VERSION="([^"]+)"', (ROOT / "scripts/services.sh").read_text(), re.M)[1]
    assert services["opensearch"]["image"] == f"opensearchproject/opensearch:{script_version}"
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    assert services["worker"]["command"][:2] == ["semsearch", "worker"]
    env = services["worker"]["environment"]
    assert env["SEMSEARCH_BROKER_URL"].startswith("redis://redis:")
    assert env["SEMSEARCH_OPENSEARCH_URL"] == "http://opensearch:9200"


def test_cli_has_the_documented_commands():
    assert {"index", "ingest", "search", "eval"} <= set(main.commands)
    assert "create" in main.commands["index"].commands


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text()
    test_command = "bash scripts/test.sh"
    assert test_command in readme.split("\n## ")[0]
    assert test_command in ci


def test_wheel_ships_every_module_ingest_mappings_and_sample(tmp_path):
    import shutil
    import subprocess
    import sys
    import zipfile

    # Built from a copy without build/: setuptools would otherwise reuse files an earlier build left there.
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                                "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(source)], check=True, capture_output=True)
    names = set(zipfile.ZipFile(next(tmp_path.glob("semsearch-*.whl"))).namelist())
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "semsearch").rglob("*.py")}
    assert modules - names == set(), "modules missing from the wheel (a package not listed in pyproject.toml?)"
    for expected in ("ingest/app.py", "ingest/tasks.py", "semsearch/mappings/opensearch-knn.json",
                     "semsearch/mappings/opensearch-passages.json", "semsearch/sample/dbpedia-sample.jsonl",
                     "semsearch/cli/__main__.py"):
        assert expected in names
