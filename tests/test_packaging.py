"""The bundled hardware/ works after a non-editable install (package data), not only from a checkout."""

import subprocess
import sys
import zipfile

import pytest

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(REPO)], check=True, capture_output=True)
    (path,) = out.glob("perfmodel-*.whl")
    return path


def test_wheel_contains_every_bundled_spec(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind_dir in ("cpu", "gpu", "xpu", "link", "system"):
        for path in (REPO / "hardware" / kind_dir).glob("*.toml"):
            assert f"perfmodel/_hardware/{kind_dir}/{path.name}" in names, path.name
    assert "perfmodel/_hardware/README.md" in names


def test_installed_wheel_loads_bundled_specs_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = (f"import sys; sys.path.insert(0, {str(target)!r}); import perfmodel as pm; "
            f"assert pm.__file__.startswith({str(target)!r}), pm.__file__; "
            "s = pm.load_system('dgx-h100'); print(s.device.name)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "h100-sxm5-80gb"


def test_wheel_contains_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "perfmodel"
    for path in package.rglob("*"):
        if path.is_file() and path.suffix in (".py", ".toml", ".csv", ".md") and "__pycache__" not in path.parts:
            rel = path.relative_to(REPO).as_posix()
            assert rel in names, f"{rel} is missing from the wheel: list its package / data in pyproject.toml"
