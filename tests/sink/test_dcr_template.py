"""The committed data collection rule template is the generated one, and right."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

from cefpipe.schema import OUTPUT_STREAM, STREAM_COLUMNS
from cefpipe.settings import DEFAULT_STREAM_NAME
from tests.conftest import REPO_ROOT

TEMPLATE_DIR = REPO_ROOT / "deploy" / "azure"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_dcr", TEMPLATE_DIR / "generate_dcr.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def committed() -> dict[str, object]:
    return dict(json.loads((TEMPLATE_DIR / "dcr.json").read_text()))


def test_committed_template_equals_the_generated_one() -> None:
    assert (TEMPLATE_DIR / "dcr.json").read_text() == generator().render()


def test_the_stream_declares_exactly_the_schema_columns_with_their_types() -> None:
    [rule] = committed()["resources"]  # type: ignore[misc]
    declared = rule["properties"]["streamDeclarations"][DEFAULT_STREAM_NAME]["columns"]

    assert [(c["name"], c["type"]) for c in declared] == [
        (name, kind.value) for name, kind in STREAM_COLUMNS.items()
    ]


def test_the_rule_is_direct_and_flows_into_common_security_log() -> None:
    [rule] = committed()["resources"]  # type: ignore[misc]
    [flow] = rule["properties"]["dataFlows"]

    assert rule["kind"] == "Direct"
    assert DEFAULT_STREAM_NAME.startswith("Custom-")
    assert flow["streams"] == [DEFAULT_STREAM_NAME]
    assert flow["outputStream"] == OUTPUT_STREAM == "Microsoft-CommonSecurityLog"
    assert flow["transformKql"] == "source | project-away Rule, Outcome"
    [destination] = rule["properties"]["destinations"]["logAnalytics"]
    assert flow["destinations"] == [destination["name"]]


def test_check_mode_accepts_the_committed_file() -> None:
    assert generator().main(["--check"]) == 0
