"""The import contracts (``[tool.importlinter]`` in pyproject.toml, run by ``make lint``) cover
every app: a new app that is in no layer would escape them."""

import tomllib
from pathlib import Path

from django.apps import apps

from tests.nordkestrel.test_settings import ROOT


def _project_apps() -> set[str]:
    return {config.name for config in apps.get_app_configs() if Path(config.path).parent == ROOT}


def _contracts() -> tuple[dict, dict[str, dict]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return config, {contract["id"]: contract for contract in config["contracts"]}


def test_every_app_is_in_one_layer_and_analysed():
    config, contracts = _contracts()
    layered = [name.strip() for layer in contracts["layers"]["layers"] for name in layer.split("|")]
    assert sorted(layered) == sorted(set(layered)), "an app in two layers"
    assert set(layered) == _project_apps()
    assert set(config["root_packages"]) == _project_apps()


def test_the_kernel_and_the_front_door_contracts_name_every_app():
    _, contracts = _contracts()
    kernel = set(contracts["kernel"]["source_modules"])
    assert kernel == {"nordkestrel", "tenants"}
    assert set(contracts["kernel"]["forbidden_modules"]) == _project_apps() - kernel
    doors = {"dashboard", "storefront"}
    assert set(contracts["front-doors"]["forbidden_modules"]) == doors
    assert set(contracts["front-doors"]["source_modules"]) == (
        _project_apps() - doors - {"demo", "nordkestrel"}
    )


# Application code is split along its seams before a module grows past this.
MAX_MODULE_LINES = 600


def test_no_module_of_application_code_is_over_600_lines():
    too_long = {}
    for app in sorted(_project_apps()):
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text().splitlines())
            if lines > MAX_MODULE_LINES:
                too_long[str(path.relative_to(ROOT))] = lines
    assert too_long == {}
