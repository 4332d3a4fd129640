"""core-model-registry: one validated table of every LLM model an orchestrator can use.

`from core_assets import ModelSelector` is resolved on first use, so that importing the package (the
CLI, the plain-Python modules) does not load Dagster.
"""


def __getattr__(name: str):
    if name == "ModelSelector":
        from core_assets.selector import ModelSelector

        return ModelSelector
    raise AttributeError(f"module 'core_assets' has no attribute {name!r}")


__all__ = ["ModelSelector"]
