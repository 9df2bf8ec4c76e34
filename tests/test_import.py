"""`import perfmodel` stays light, and the public surface is exactly __all__."""

import pathlib
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
    assert issubclass(perfmodel.SweepError, RuntimeError)
    assert issubclass(perfmodel.NoCrossoverError, ValueError)
    assert str(perfmodel.UnknownNameError("unknown x")) == "unknown x"  # no KeyError quotes


def test_no_public_name_is_also_a_submodule():
    # importing a submodule binds it as an attribute of the package: a submodule named like a public
    # function (the old perfmodel/predict/, validate.py, sweep.py, optimize.py) would shadow it
    package = pathlib.Path(perfmodel.__file__).parent
    modules = {p.stem for p in package.glob("*.py")}
    packages = {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    assert set(perfmodel.__all__) & (modules | packages) == set()


def test_importing_the_submodules_first_keeps_the_functions():
    code = ("import types, perfmodel.prediction, perfmodel.validation, perfmodel.sweeps, perfmodel.sweeps.search, "
            "perfmodel as pm; "
            "assert all(isinstance(getattr(pm, n), types.FunctionType) for n in ('predict', 'validate', 'sweep', "
            "'optimize')); "
            "assert pm.predict is perfmodel.prediction.predict and pm.sweep is perfmodel.sweeps.sweep; "
            "r = pm.predict(pm.load_model('gpt2-124m'), pm.load_system('h100-sxm5-80gb'), pm.Plan(micro_batch=4)); "
            "assert r.step_time_s > 0; assert pm.validate('megatron2020').dataset == 'megatron2020'")
    subprocess.run([sys.executable, "-c", code], check=True)
