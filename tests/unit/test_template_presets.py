"""The built-in template presets that ship as package data."""

from __future__ import annotations

from service.domain.presets import PRESET_ID_PREFIX, is_preset_id, presets
from service.domain.validation import ConfigValidator


def test_there_are_a_handful_of_presets_with_preset_ids():
    assert 3 <= len(presets()) <= 10
    assert all(preset_id.startswith(PRESET_ID_PREFIX) for preset_id in presets())


def test_every_preset_passes_the_validator_every_config_write_passes():
    validator = ConfigValidator()
    for preset in presets().values():
        assert validator.validate(preset.config) == [], preset.id
        if preset.parameters is not None:
            assert validator.validate_parameters(preset.parameters) == [], preset.id
        assert preset.display_name and len(preset.display_name) <= 200


def test_uuid_ids_of_tenant_templates_are_never_preset_ids():
    assert not is_preset_id("0b6f4a36-64a1-4d8e-9a44-52b1d7b0e1a2")
