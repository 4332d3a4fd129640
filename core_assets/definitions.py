from pathlib import Path

import dagster as dg

from core_assets.defs.automation import with_operating_policies


@dg.definitions
def defs() -> dg.Definitions:
    return with_operating_policies(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
