import gc
from pathlib import Path

import dagster as dg

from core_assets.defs.automation import with_operating_policies

# A run executes every step in this process (in-process executor), and a sync parses, builds and unpickles
# millions of small dicts and lists. At CPython's default cadence — a collection every 700 new containers —
# the cyclic collector re-scans them again and again, close to doubling the sync's CPU time. They are freed
# by reference counting, not by the collector, so collecting every 50,000 costs no memory worth counting.
gc.set_threshold(50_000, *gc.get_threshold()[1:])


@dg.definitions
def defs() -> dg.Definitions:
    return with_operating_policies(dg.load_from_defs_folder(path_within_project=Path(__file__).parent))
