"""Models behind one contract (``models.base.Forecaster``) and a registry by name."""

from __future__ import annotations

from storecast.errors import UsageError
from storecast.models.base import Forecaster
from storecast.models.baselines import SeasonalNaive, YoYScaled
from storecast.models.calendar_naive import CalendarNaive
from storecast.models.calendar_yoy import CalendarYoY
from storecast.models.drivers import DriversModel
from storecast.models.ensemble import Ensemble, PooledBlend
from storecast.models.gbm import GBMModel
from storecast.models.statistical import ARIMAXModel, AutoARIMAModel, ETSModel, MSTLModel

MODELS: dict[str, type[Forecaster]] = {
    SeasonalNaive.name: SeasonalNaive,
    YoYScaled.name: YoYScaled,
    CalendarYoY.name: CalendarYoY,
    CalendarNaive.name: CalendarNaive,
    Ensemble.name: Ensemble,
    PooledBlend.name: PooledBlend,
    MSTLModel.name: MSTLModel,
    ETSModel.name: ETSModel,
    AutoARIMAModel.name: AutoARIMAModel,
    ARIMAXModel.name: ARIMAXModel,
    GBMModel.name: GBMModel,
    DriversModel.name: DriversModel,
}

#: What ``model = "auto"`` means: the most accurate store-level model in the backtest that
#: meets the holiday-window target and the speed budget (docs/benchmarks.md, Accuracy).
DEFAULT_MODEL = CalendarYoY.name
#: ``auto`` per data level: department series are noisy and short, so there a blend of
#: pooled models wins clearly (docs/benchmarks.md, Department level).
DEFAULT_MODELS = {"store": DEFAULT_MODEL, "dept": PooledBlend.name}
#: Always reported beside every model in a backtest.
BASELINES = (SeasonalNaive.name, YoYScaled.name)


def resolve_model(name: str | None, level: str = "store") -> str:
    """The model ``name`` stands for at this data level (``auto`` or None -> the default)."""
    if name in (None, "auto"):
        return DEFAULT_MODELS.get(level, DEFAULT_MODEL)
    return name


def get_model_class(name: str) -> type[Forecaster]:
    if name == "auto":
        name = DEFAULT_MODEL
    try:
        return MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}") from None


def create_model(name: str, *, seed: int = 0) -> Forecaster:
    return get_model_class(name)(seed=seed)


__all__ = ["BASELINES", "DEFAULT_MODEL", "DEFAULT_MODELS", "resolve_model", "MODELS", "Forecaster", "create_model", "get_model_class"]
