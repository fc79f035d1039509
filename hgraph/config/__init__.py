"""Every knob, as one frozen dataclass tree (:mod:`.schema`), the per-encoder
presets (:mod:`.presets`), version upgrades of older run folders' config
(:mod:`.upgrade`) and loading from dicts and YAML (:mod:`.load`).

This package imports nothing from hgraph but :mod:`hgraph.errors`: the
registries (encoders, datasets, ...) import config types, and the CLI choices
and help that come from them are resolved where the CLI is built
(:mod:`hgraph.registries`, :mod:`hgraph.cli`).
"""
from hgraph.config.schema import (CONFIG_VERSION, SECTIONS, DataConfig, EvalConfig,
                                  ItemsConfig, ModelConfig, RegConfig, RunConfig,
                                  SamplingConfig, TrainConfig, opt)
from hgraph.config.upgrade import upgrade
from hgraph.config.presets import (ENCODER_PRESETS, FEATURE_PRESETS, DatasetFeatures,
                                   apply_presets)
from hgraph.config.load import from_dict, load_yaml, validate
from hgraph.config.items import (ITEM_KEYS, flat_item_settings,  # noqa: E402
                                 nest_item_settings)

__all__ = ["CONFIG_VERSION", "SECTIONS", "DataConfig", "EvalConfig", "ModelConfig", "RegConfig",
           "RunConfig", "SamplingConfig", "TrainConfig", "opt", "upgrade", "ENCODER_PRESETS",
           "FEATURE_PRESETS", "DatasetFeatures", "apply_presets", "from_dict", "load_yaml",
           "validate", "ItemsConfig", "ITEM_KEYS", "flat_item_settings", "nest_item_settings"]
