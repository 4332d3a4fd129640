"""Resources: the registry database and the switch between live APIs and the bundled demo replay."""

import dagster as dg
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

@dg.definitions
def resources() -> dg.Definitions:
    return dg.Definitions(
        resources={"registry_db": RegistryDatabase(), "sources": DataSources()},
        executor=dg.in_process_executor,
    )
