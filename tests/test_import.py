"""`import perfmodel` stays light, and the public surface is exactly __all__."""

import subprocess
import sys

import perfmodel

HEAVY = ("numpy", "sympy", "pandas", "typer", "rich", "click", "matplotlib", "dask")


def test_import_pulls_in_no_heavy_library():
    code = "import sys, perfmodel; print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import perfmodel imported: {out}"


def test_loading_a_spec_pulls_in_no_heavy_library():
    code = ("import sys, perfmodel as pm; pm.load_system('dgx-h100'); "
            "print(','.join(m for m in %r if m in sys.modules))" % (HEAVY,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"loading a system imported: {out}"


def test_all_is_honest():
    for name in perfmodel.__all__:
        assert hasattr(perfmodel, name), name
    public = {n for n in dir(perfmodel) if not n.startswith("_")}
    # submodules become attributes once imported; everything else public must be in __all__
    import types

    extra = {n for n in public - set(perfmodel.__all__) if not isinstance(getattr(perfmodel, n), types.ModuleType)}
    assert extra == set(), extra


def test_errors_are_also_builtins():
    assert issubclass(perfmodel.SpecError, ValueError)
    assert issubclass(perfmodel.UnknownNameError, KeyError)
    assert issubclass(perfmodel.PlanError, ValueError)
    assert issubclass(perfmodel.InputFileError, FileNotFoundError)
    assert str(perfmodel.UnknownNameError("unknown x")) == "unknown x"  # no KeyError quotes
