"""Which reference catalogs run (`CORE_REFERENCES`), where each one's data comes from (live URL or the
bundled copy), and finding one of our models in them."""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core_assets import settings
from core_assets.enrichment.merge import REFERENCE_ORDER
from core_assets.http import FetchError, HttpClient, redact
from core_assets.records import PayloadError, facts_by_key
from core_assets.references import litellm, models_dev
from core_assets.references.facts import Key, Parsed
from core_assets.settings import ConfigError

log = logging.getLogger(__name__)

CATALOGS = {litellm.NAME: litellm, models_dev.NAME: models_dev}
DATA_DIR = Path(__file__).parent / "data"
OFFLINE = "offline"
NONE = "none"
BUNDLED = "bundled"
DISABLED = "disabled"
COLUMNS = ["provider_id", "model_id", "facts"]


@dataclass(frozen=True)
class ReferenceConfig:
    catalogs: tuple[str, ...]
    offline: bool


def reference_config() -> ReferenceConfig:
    """`CORE_REFERENCES`: a comma list of catalogs (default all), plus `offline` for the bundled copies or
    `none` for no catalog at all."""
    raw = os.environ.get("CORE_REFERENCES", "")
    words = [word.strip().lower() for word in raw.split(",") if word.strip()]
    unknown = [word for word in words if word not in CATALOGS and word not in (OFFLINE, NONE)]
    if unknown:
        known = ", ".join([*CATALOGS, OFFLINE, NONE])
        raise ConfigError(f"CORE_REFERENCES names unknown catalog(s) {', '.join(unknown)}; known: {known}")
    named = [name for name in CATALOGS if name in words]
    if NONE in words:
        if named:
            raise ConfigError("CORE_REFERENCES: `none` cannot be combined with catalog names")
        return ReferenceConfig((), OFFLINE in words)
    return ReferenceConfig(tuple(named or CATALOGS), OFFLINE in words)


@dataclass
class Catalog:
    """One reference catalog, parsed: facts per (provider_id, model_id) of our providers."""

    name: str
    parsed: Parsed
    source: str
    warnings: list[str] = field(default_factory=list)

    @property
    def facts(self) -> dict[Key, dict[str, Any]]:
        return self.parsed.facts

    def frame(self) -> pd.DataFrame:
        rows = [(p, m, facts) for (p, m), facts in sorted(self.facts.items())]
        return pd.DataFrame(rows, columns=COLUMNS)


def read_bundled(name: str) -> Any:
    """The offline copy of a catalog shipped in the package (built by scripts/build_reference_snapshots.py)."""
    module = CATALOGS[name]
    with gzip.open(DATA_DIR / module.BUNDLED_FILE, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def load_catalog(name: str, *, demo: bool = False) -> Catalog:
    """The catalog `name` from its live URL, or from the bundled copy in demo mode, with `CORE_REFERENCES`
    offline, or when the live fetch fails (then with a warning). A disabled catalog comes back empty."""
    config = reference_config()
    module = CATALOGS[name]
    if name not in config.catalogs:
        return Catalog(name, Parsed({}, 0, {}), DISABLED)
    warnings = []
    if not (demo or config.offline):
        secrets = settings.all_api_keys()
        try:
            with HttpClient(secrets=secrets) as http:
                document = module.fetch(http)
            return Catalog(name, module.parse(document), redact(module.url(), secrets))
        except (FetchError, PayloadError) as exc:
            warning = f"{name}: live catalog unusable ({exc}); using the bundled copy"
            log.warning(warning)
            warnings.append(warning)
    return Catalog(name, module.parse(read_bundled(name)), f"{BUNDLED} ({module.BUNDLED_FILE})", warnings)


class References:
    """Every reference catalog's facts, looked up by exact provider + id (never fuzzy)."""

    def __init__(self, indexes: dict[str, dict[Key, dict[str, Any]]]):
        self.indexes = {name: indexes.get(name, {}) for name in REFERENCE_ORDER}

    @classmethod
    def from_frames(
        cls, litellm_frame: pd.DataFrame | None, models_dev_frame: pd.DataFrame | None
    ) -> References:
        return cls(
            {litellm.NAME: facts_by_key(litellm_frame), models_dev.NAME: facts_by_key(models_dev_frame)}
        )

    def lookup(
        self, name: str, provider_id: str, model_id: str, aliases: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        """The catalog's facts for the model under its own id, else under one of the aliases its provider
        declares for it (Mistral lists `mistral-large-latest` as an alias of `mistral-large-2411`)."""
        index = self.indexes[name]
        for candidate in (model_id, *aliases):
            facts = index.get((provider_id, candidate))
            if facts:
                return facts
        return None

    def sources(
        self, provider_id: str, model_id: str, aliases: Iterable[str] = ()
    ) -> list[tuple[str, dict[str, Any] | None]]:
        """[(catalog name, facts or None)] in merge precedence order, ready for merge_facts."""
        aliases = list(aliases or ())
        return [(name, self.lookup(name, provider_id, model_id, aliases)) for name in REFERENCE_ORDER]
