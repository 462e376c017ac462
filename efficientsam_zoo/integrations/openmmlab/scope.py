"""The package's child registries (scope ``efficientsam_zoo``) below each of mmengine's root registries.

Configs of the package's own mmengine models set ``default_scope = "efficientsam_zoo"`` and
``custom_imports=dict(imports=["efficientsam_zoo.integrations.openmmlab"])``; optimisers, schedulers, hooks and
``ImgDataPreprocessor`` resolve through the parents.
"""
from mmengine import registry as _mm
from mmengine.registry import Registry

__all__ = ["MODELS", "DATASETS", "TRANSFORMS", "HOOKS"]

_LOC = ["efficientsam_zoo.integrations.openmmlab"]


def _child(parent: Registry) -> Registry:
    """A registry of scope ``efficientsam_zoo`` below one of mmengine's root registries."""
    return Registry(parent.name, parent=parent, scope="efficientsam_zoo", locations=_LOC)


MODELS = _child(_mm.MODELS)
DATASETS = _child(_mm.DATASETS)
TRANSFORMS = _child(_mm.TRANSFORMS)
# the rest exist so that configs with default_scope="efficientsam_zoo" resolve every type without warnings
RUNNERS, RUNNER_CONSTRUCTORS, LOOPS, HOOKS, DATA_SAMPLERS, OPTIMIZERS, OPTIM_WRAPPERS = (
    _child(r) for r in (_mm.RUNNERS, _mm.RUNNER_CONSTRUCTORS, _mm.LOOPS, _mm.HOOKS, _mm.DATA_SAMPLERS,
                        _mm.OPTIMIZERS, _mm.OPTIM_WRAPPERS))
OPTIM_WRAPPER_CONSTRUCTORS, PARAM_SCHEDULERS, METRICS, EVALUATOR, VISUALIZERS, VISBACKENDS, LOG_PROCESSORS = (
    _child(r) for r in (_mm.OPTIM_WRAPPER_CONSTRUCTORS, _mm.PARAM_SCHEDULERS, _mm.METRICS, _mm.EVALUATOR,
                        _mm.VISUALIZERS, _mm.VISBACKENDS, _mm.LOG_PROCESSORS))
WEIGHT_INITIALIZERS, FUNCTIONS, TASK_UTILS, INFERENCERS, STRATEGIES = (
    _child(r) for r in (_mm.WEIGHT_INITIALIZERS, _mm.FUNCTIONS, _mm.TASK_UTILS, _mm.INFERENCERS, _mm.STRATEGIES))
