"""The built wheels, installed (not editable) in a fresh virtual environment, work: the
``ailib`` command shows the release's version and a store round trip passes on every backend.

The wheels are built from the checkout with ``python -m build`` once per test run; pip fetches
their dependencies from the package index (its cache makes later runs fast)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import venv
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.servers.s3 import DUMMY_ENV

ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = ("ailib_core", "ailib_store_redis", "ailib_store_sql", "ailib_store_s3")
#: What each wheel is installed with: the SQL store's drivers for the servers tested here.
EXTRAS = {"ailib_store_sql": "[postgresql,mysql]"}
ROUNDTRIP = Path(__file__).with_name("_roundtrip.py")

pytestmark = pytest.mark.timeout(1200)


def release_version() -> str:
    """The one version number every distribution of the release carries."""
    versions = {
        name: tomllib.loads((ROOT / name / "pyproject.toml").read_text())["project"]["version"]
        for name in DISTRIBUTIONS
    }
    assert len(set(versions.values())) == 1, f"distributions disagree on the version: {versions}"
    return str(next(iter(versions.values())))


def run(*args: str | Path, env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, check=False
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, args))} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    for name in DISTRIBUTIONS:
        run(sys.executable, "-m", "build", "--wheel", "--outdir", out, ROOT / name)
    built = {name: next(out.glob(f"{name}-*.whl")) for name in DISTRIBUTIONS}
    version = release_version()
    for name, wheel in built.items():
        assert wheel.name.startswith(f"{name}-{version}-"), wheel.name
    return built


@pytest.fixture(scope="module")
def installed(wheels: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a new venv holding the four wheels and their dependencies."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    requirements = [
        f"{wheel.name.split('-')[0].replace('_', '-')}{EXTRAS.get(name, '')} @ {wheel.as_uri()}"
        for name, wheel in wheels.items()
    ]
    run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-compile",
        *requirements,
    )  # fmt: skip
    return home / "bin"


def test_wheels_hold_every_source_file(wheels: dict[str, Path]) -> None:
    """Each wheel holds its package's whole source tree, py.typed included, and nothing else."""
    for name, wheel in wheels.items():
        src = ROOT / name / "src"
        expected = {
            p.relative_to(src).as_posix()
            for p in src.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
        }
        with zipfile.ZipFile(wheel) as archive:
            held = {n for n in archive.namelist() if ".dist-info/" not in n}
        assert held == expected, (name, held ^ expected)
        assert any(n.endswith("/py.typed") for n in held), name


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would let the checkout's code in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return env | extra


def test_cli_shows_the_release_version(installed: Path) -> None:
    out = run(installed / "ailib", "--version", env=clean_env())
    assert release_version() in out.split(), out


def test_every_distribution_registers_its_stores(installed: Path) -> None:
    rows = [
        line.split() for line in run(installed / "ailib", "stores", env=clean_env()).splitlines()
    ]
    for name in DISTRIBUTIONS:
        dist = name.replace("_", "-")
        assert any(dist in row and release_version() in row for row in rows), (name, rows)


def test_packages_come_from_the_wheels(installed: Path) -> None:
    site = run(
        installed / "python", "-I", "-c",
        "import ailib, ailib_store_redis, ailib_store_sql, ailib_store_s3 as m, sys;"
        "print('\\n'.join(x.__file__ for x in (ailib, ailib_store_redis, ailib_store_sql, m)))",
        env=clean_env(),
    )  # fmt: skip
    home = installed.parent.resolve()
    for path in site.split():
        assert Path(path).resolve().is_relative_to(home), f"{path} is not from the wheels"


def roundtrip(installed: Path, url: str, **env: str) -> None:
    out = run(installed / "python", "-I", ROUNDTRIP, url, env=clean_env(**env))
    result = json.loads(out.splitlines()[-1])
    assert result["messages"] == [["user", "hello from a wheel"], ["assistant", "hello back"]]
    assert result["listed"] is True
    assert result["deleted"] is True
    assert Path(result["file"]).resolve().is_relative_to(installed.parent.resolve())
    assert result["version"] == release_version()


def test_roundtrip_sqlite(installed: Path, tmp_path: Path) -> None:
    roundtrip(installed, f"sqlite:///{tmp_path / 'sessions.db'}")


def test_roundtrip_redis(installed: Path, shared_redis: str) -> None:
    roundtrip(installed, shared_redis)


def test_roundtrip_postgresql(installed: Path, postgres_store_url: str) -> None:
    roundtrip(installed, postgres_store_url)


def test_roundtrip_mariadb(installed: Path, mariadb_store_url: str) -> None:
    roundtrip(installed, mariadb_store_url)


def test_roundtrip_s3(installed: Path, moto_url: str) -> None:
    roundtrip(installed, moto_url, **DUMMY_ENV)


def test_offline_chat_needs_no_test_tools(installed: Path, tmp_path: Path) -> None:
    """``ailib chat --offline`` works in an install without pytest (a user's, not a dev's)."""
    done = subprocess.run(
        [installed / "ailib", "--store", f"sqlite:///{tmp_path / 'chat.db'}", "chat", "--offline"],
        input="hello offline\n/exit\n",
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "reply #1 to: hello offline" in done.stdout, done.stdout


def test_readme_example_runs_from_the_wheels(installed: Path, tmp_path: Path) -> None:
    """The README's example, as written, with what its Install section installs and no key."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"^```python\n(.*?)^```", readme, re.DOTALL | re.MULTILINE)
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    env = {k: v for k, v in clean_env().items() if not k.startswith("OPENAI_")}
    done = subprocess.run(
        [installed / "python", "-I", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.fullmatch(r"\['[0-9a-f]+'\]\n", done.stdout), done.stdout


def test_install_section_checks_pass(installed: Path, tmp_path: Path, shared_redis: str) -> None:
    """The round trips the README's Install section gives to check an installation."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- --8<-- [start:install] -->")[1].split("[end:install]")[0]
    checks = re.findall(r"^python -c '(.*)'$", section, re.MULTILINE)
    assert len(checks) == 2, checks
    for check in checks:
        out = run(installed / "python", "-I", "-c", check, env=clean_env(), cwd=tmp_path)
        assert out == "[{'role': 'user', 'content': 'hi'}]\n", (check, out)
