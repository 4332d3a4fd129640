"""Resources: the registry database, the switch between live APIs and the bundled demo replay, and the IO
manager that carries the frames from asset to asset."""

from typing import Any

import dagster as dg
from dagster._core.execution.plan.outputs import StepOutputHandle
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from pydantic import Field
from sqlalchemy.engine import Engine

from core_assets import settings
from core_assets.db.engine import connect


class RegistryDatabase(dg.ConfigurableResource):
    """The registry database (`CORE_DATABASE_URL`; SQLite `.core/registry.db` by default)."""

    url: str = Field(default_factory=settings.database_url, description="SQLAlchemy URL of the registry database")

    def engine(self) -> Engine:
        """The engine, with pending migrations applied (idempotent, once per process)."""
        return connect(self.url)

class DataSources(dg.ConfigurableResource):
    """Where provider and reference data come from: the live APIs, or the recorded responses bundled
    in the package (`demo`, what `core-registry sync --demo` and `CORE_DEMO=1` select)."""

    demo: bool = Field(default_factory=settings.demo_mode, description="replay bundled recorded responses")

class _RunLocalPickles(PickledObjectFilesystemIOManager):
    """Pickles each output to its file, as the default IO manager does, and hands the object itself to
    the steps of the same run that read it, instead of each unpickling the file: at 100,000 models a
    frame takes seconds to unpickle, and model_specs is read by six steps. The steps only read their
    inputs, so sharing them is safe. An object is dropped after its last read in the run; a later run
    (or another process) reads the file."""

    def __init__(self, base_dir: str):
        super().__init__(base_dir=base_dir)
        # path → [the object, reads still to come in this run]
        self._outputs: dict[str, list[Any]] = {}

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path) -> None:
        super().dump_to_path(context, obj, path)
        readers = _reads_in_run(context)
        if readers:
            self._outputs[str(path)] = [obj, readers]

    def load_from_path(self, context: dg.InputContext, path) -> Any:
        entry = self._outputs.get(str(path))
        if entry is None:
            return super().load_from_path(context, path)
        entry[1] -= 1
        if entry[1] == 0:
            del self._outputs[str(path)]
        return entry[0]


def _reads_in_run(context: dg.OutputContext) -> int:
    """How many inputs of the steps this run executes read the output (from the run's execution plan)."""
    handle = StepOutputHandle(context.step_key, context.name)
    return sum(
        handle in step_input.get_step_output_handle_dependencies()
        for step in context.step_context.execution_plan.get_steps_to_execute_in_topo_order()
        for step_input in step.step_inputs
    )


class RunLocalIOManager(dg.FilesystemIOManager):
    """The default filesystem IO manager (pickles under the instance's storage directory, or `base_dir`),
    handing outputs to the steps of the same run without a pickle round trip."""

    def create_io_manager(self, context: dg.InitResourceContext) -> PickledObjectFilesystemIOManager:
        return _RunLocalPickles(base_dir=self.base_dir or context.instance.storage_directory())


@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"registry_db": RegistryDatabase(), "sources": DataSources(), "io_manager": RunLocalIOManager()},
        executor=dg.in_process_executor,
    )
