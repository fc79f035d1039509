"""Version upgrades: an older run folder's ``config.json`` in the current layout
(:data:`hgraph.config.schema.CONFIG_VERSION`)."""
from __future__ import annotations

from typing import Any, Dict

from hgraph.config.schema import CONFIG_VERSION, ModelConfig
from hgraph.errors import HGraphInputError

_MOVED_V1 = {"sampling": ("fanouts", "full_batch", "hide_supervision"),
             "reg": ("reg_lambda", "reg_kinds", "reg_warmup", "reg_margin", "hard_negatives")}
#: ``train`` keys version 2 renamed: old name -> new name
_RENAMED_V1 = {"burnin_factor": "burnin_lr_divisor"}


def upgrade(d: Dict[str, Any], source: str = "<config>") -> Dict[str, Any]:
    """A config dict of any earlier version in the current layout (a copy).

    A dict without ``version`` is version 1 when its ``train`` section holds a
    key that version 2 moved or renamed (every version-1 ``config.json`` does),
    else the current version (a YAML file or flags typed by a user).

    Version 1 -> 2: ``train.{fanouts, full_batch, hide_supervision}`` move to
    ``sampling``, ``train.{reg_*, hard_negatives}`` to ``reg``,
    ``train.burnin_factor`` becomes ``train.burnin_lr_divisor``; a version-1
    run of an encoder other than ramen never used its regulariser, so its
    ``reg_lambda`` becomes 0 (the run it describes is the run it was).
    """
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
    version = d.pop("version", None)
    if version is None:      # a run folder of version 1, or a dict typed by a user (current)
        train = d.get("train") if isinstance(d.get("train"), dict) else {}
        moved = {k for keys in _MOVED_V1.values() for k in keys} | set(_RENAMED_V1)
        version = 1 if moved & set(train) else CONFIG_VERSION
    if not isinstance(version, int) or isinstance(version, bool) or \
            not 1 <= version <= CONFIG_VERSION:
        raise HGraphInputError(f"unknown config version {version!r}", file=source,
                               fix=f"this hgraph reads versions 1..{CONFIG_VERSION}")
    if version == 1:
        train = d.get("train")
        v1_lambda = False           # reg_lambda came from version 1's train section
        if isinstance(train, dict):
            v1_lambda = "reg_lambda" in train
            for sec, keys in _MOVED_V1.items():
                moved = {k: train.pop(k) for k in keys if k in train}
                if moved:
                    d.setdefault(sec, {}).update(moved)
            for old_key, new_key in _RENAMED_V1.items():
                if old_key in train:
                    train[new_key] = train.pop(old_key)
        model = d.get("model") if isinstance(d.get("model"), dict) else {}
        if model.get("encoder", ModelConfig.encoder) != "ramen" and v1_lambda \
                and isinstance(d.get("reg"), dict):
            d["reg"]["reg_lambda"] = 0.0
    return d


__all__ = ["upgrade"]
