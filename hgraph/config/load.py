"""From a nested dict or a YAML file to a checked :class:`RunConfig`: version
upgrade, presets, unknown keys and wrong types rejected, values no run can use
rejected (:func:`validate`).  Registry names (encoder, dataset, ...) are
checked where the CLI is built: argparse choices in :mod:`hgraph.cli`."""
from __future__ import annotations

import dataclasses
from dataclasses import fields
from typing import Any, Dict, Optional

from hgraph.config.presets import DatasetFeatures, apply_presets
from hgraph.config.schema import SECTIONS, RunConfig
from hgraph.config.upgrade import upgrade
from hgraph.errors import HGraphInputError


def _coerce(cls, name: str, value: Any, source: str):
    f = {x.name: x for x in fields(cls)}[name]
    default = f.default
    typ = type(default) if default is not None and default is not dataclasses.MISSING else None
    try:
        if isinstance(default, tuple):
            if not isinstance(value, (list, tuple)):
                value = [value]
            inner = type(default[0]) if default else str
            return tuple(inner(v) for v in value)
        if typ is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if typ in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            if typ is int and float(value) != int(value):
                raise TypeError
            return typ(value)
        if typ is str and not isinstance(value, str):
            raise TypeError
        return value
    except (TypeError, ValueError):
        raise HGraphInputError(f"{cls.__name__[:-6].lower() or 'run'}.{name}: expected "
                               f"{typ.__name__ if typ else 'a value'}, got {value!r}",
                               file=source) from None



def from_dict(d: Dict[str, Any], source: str = "<config>", presets: bool = True,
              dataset_features: Optional[DatasetFeatures] = None) -> RunConfig:
    """Build a RunConfig from a nested dict, rejecting unknown keys and wrong types.

    With ``presets`` the encoder's :data:`ENCODER_PRESETS` fill unset fields, and
    its :data:`FEATURE_PRESETS` on the run's kind of features: ``data.features``,
    else the dataset's default as ``dataset_features`` reports it (pass
    :func:`hgraph.registries.dataset_features`, as :func:`hgraph.cli.parse_config`
    does; see :func:`hgraph.config.presets.apply_presets`).
    """
    if not isinstance(d, dict):
        raise HGraphInputError("config must be a mapping", file=source)
    d = upgrade(d, source)
    if presets:
        d = apply_presets(d, dataset_features)
    top = {}
    run_fields = {f.name for f in fields(RunConfig)} - set(SECTIONS)
    for key, val in d.items():
        if key in SECTIONS:
            cls = SECTIONS[key]
            if not isinstance(val, dict):
                raise HGraphInputError(f"section {key!r} must be a mapping", file=source)
            known = {f.name for f in fields(cls)}
            for k in val:
                if k not in known:
                    raise HGraphInputError(f"unknown key {key}.{k}", file=source,
                                           fix=f"valid keys: {', '.join(sorted(known))}")
            top[key] = cls(**{k: _coerce(cls, k, v, source) for k, v in val.items()})
        elif key in run_fields:
            top[key] = _coerce(RunConfig, key, val, source)
        else:
            raise HGraphInputError(f"unknown key {key!r}", file=source,
                                   fix=f"valid keys: {', '.join(sorted(run_fields | set(SECTIONS)))}")
    cfg = RunConfig(**top)
    validate(cfg, source)
    return cfg


def load_yaml(path: str) -> Dict[str, Any]:
    import yaml
    try:
        with open(path, encoding="utf-8") as fh:
            d = yaml.safe_load(fh)
    except FileNotFoundError:
        raise HGraphInputError("config file not found", file=path) from None
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise HGraphInputError(f"invalid YAML: {getattr(e, 'problem', e)}", file=path,
                               line=None if line is None else line + 1) from None
    except UnicodeDecodeError:
        raise HGraphInputError("config is not UTF-8 text", file=path) from None
    return d or {}


def validate(cfg: RunConfig, source: str = "<config>") -> None:
    """Reject values no run can use (negative sizes, fractions out of range)."""
    def bad(what, fix=None):
        raise HGraphInputError(what, file=source, fix=fix)
    m, t, dcfg = cfg.model, cfg.train, cfg.data
    if m.dim < 1:
        bad(f"model.dim must be >= 1, got {m.dim}")
    if not m.construct_tau >= 0:
        bad(f"model.construct_tau must be >= 0 (0 = chosen from the depth), got {m.construct_tau}")
    if m.hidden < 1 or m.layers < 1:
        bad(f"model.hidden and model.layers must be >= 1, got {m.hidden}, {m.layers}")
    if m.manifold != "euclidean" and not m.curvature > 0:
        bad(f"model.curvature must be > 0, got {m.curvature}")
    if t.epochs < 1:
        bad(f"train.epochs must be >= 1, got {t.epochs}")
    if t.batch_size < 1 or t.negatives < 1:
        bad(f"train.batch_size and train.negatives must be >= 1, got {t.batch_size}, {t.negatives}")
    if not t.lr > 0:
        bad(f"train.lr must be > 0, got {t.lr}")
    if t.burnin < 0:
        bad(f"train.burnin must be >= 0, got {t.burnin}")
    if not t.burnin_lr_divisor >= 1:
        bad(f"train.burnin_lr_divisor must be >= 1 (burn-in runs at lr / it, so below 1 "
            f"burn-in would be faster than training), got {t.burnin_lr_divisor:g}",
            fix="it divides the rate: poincare-embeddings' -burnin_multiplier m is "
                "--burnin-lr-divisor 1/m, e.g. 0.01 -> 100")
    if t.loss_patience < 0:
        bad(f"train.loss_patience must be >= 0 (0 = off), got {t.loss_patience}")
    if not 0 <= t.loss_min_delta < 1:
        bad(f"train.loss_min_delta must be in [0, 1), got {t.loss_min_delta:g}")
    if t.workers < 1:
        bad(f"train.workers must be >= 1, got {t.workers}")
    if not 0 <= t.local_negatives < 1:
        bad(f"train.local_negatives is a share in [0, 1), got {t.local_negatives:g}")
    if not 0 <= t.near_negatives < 1:
        bad(f"train.near_negatives is a share in [0, 1), got {t.near_negatives:g}")
    if t.near_k < 1 or t.near_every < 1:
        bad(f"train.near_k and train.near_every must be >= 1, got {t.near_k}, {t.near_every}")
    if t.near_negatives and (t.trainer != "fused" or t.workers > 1 or t.local_negatives):
        bad("train.near_negatives is the fused trainer's, with one worker and without "
            "local_negatives", fix="add --trainer fused --workers 1 --local-negatives 0")
    if not t.temperature > 0:
        bad(f"train.temperature must be > 0, got {t.temperature:g}")
    if t.temperature != 1.0 and t.trainer != "fused":
        bad("train.temperature is the fused trainer's", fix="add --trainer fused")
    if t.local_negatives and t.trainer != "fused":
        bad("train.local_negatives is the fused trainer's", fix="add --trainer fused")
    if not m.init_radius >= 0:
        bad(f"model.init_radius must be >= 0 (0 = the default), got {m.init_radius}")
    for name in ("val_frac", "test_frac", "inductive_frac"):
        v = getattr(dcfg, name)
        if not 0 <= v < 1:
            bad(f"data.{name} must be in [0, 1), got {v}")
    if dcfg.val_frac + dcfg.test_frac >= 1:
        bad("data.val_frac + data.test_frac must be < 1")
    if not cfg.seeds:
        bad("at least one seed is needed")
    if not 0 <= m.dropout < 1:
        bad(f"model.dropout must be in [0, 1), got {m.dropout}")
    if not t.time_cap_s >= 0:
        bad(f"train.time_cap_s must be >= 0 (0 = no cap), got {t.time_cap_s}")
    if cfg.threads < 0:
        bad(f"threads must be >= 0 (0 = torch's default), got {cfg.threads}")
    if cfg.task == "items":
        from hgraph.config.items import validate_items
        validate_items(cfg, bad)


__all__ = ["from_dict", "load_yaml", "validate"]
