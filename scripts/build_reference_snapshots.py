"""Build the bundled offline copies of the reference catalogs (core_assets/references/data/).

    python scripts/build_reference_snapshots.py [SAMPLES_DIR]

SAMPLES_DIR (default ../shared/provider_samples) holds the recorded public data: LiteLLM's
`litellm/model_prices_and_context_window.json` and models.dev's TOML tree under `models_dev/`.
LiteLLM's file is copied as is. The models.dev tree is compiled into the shape models.dev serves at
https://models.dev/api.json ({provider: {id, name, ..., models: {model_id: {id, ...}}}}), resolving each
model's `base_model` the way models.dev does: the provider file's top-level keys win, a table set
locally replaces the inherited one whole, and `base_model_omit` drops inherited keys (dotted paths).

The output is gzip with a fixed timestamp, so rebuilding from the same inputs gives identical bytes.
Run once when the samples change; nothing at run or test time reads SAMPLES_DIR.
"""

from __future__ import annotations

import gzip
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "core_assets" / "references" / "data"
DEFAULT_SAMPLES = ROOT.parent / "shared" / "provider_samples"

# models.dev provider folders copied into the samples (SOURCES.md); only these are compiled.
MODELS_DEV_PROVIDERS = ("google", "mistral", "openrouter", "groq", "ollama-cloud")


def write_gzip(path: Path, document) -> None:
    data = json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode()
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(data)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")


def _drop(document: dict, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        document = document.get(key)
        if not isinstance(document, dict):
            return
    document.pop(leaf, None)


def resolve_model(path: Path, base_dir: Path) -> dict:
    local = tomllib.loads(path.read_text())
    base_name = local.pop("base_model", None)
    omit = local.pop("base_model_omit", [])
    if base_name is None:
        return local
    base = tomllib.loads((base_dir / f"{base_name}.toml").read_text())
    for dotted in omit:
        _drop(base, dotted)
    return {**base, **local}


def models_dev_api(samples: Path) -> dict:
    tree = samples / "models_dev"
    api = {}
    for provider in MODELS_DEV_PROVIDERS:
        folder = tree / "providers" / provider
        meta = tomllib.loads((folder / "provider.toml").read_text())
        models = {}
        for path in sorted((folder / "models").rglob("*.toml")):
            model_id = path.relative_to(folder / "models").with_suffix("").as_posix()
            models[model_id] = {"id": model_id, **resolve_model(path, tree / "models")}
        api[provider] = {"id": provider, **meta, "models": models}
    return api


def main(argv: list[str]) -> None:
    samples = Path(argv[0]) if argv else DEFAULT_SAMPLES
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    litellm = json.loads((samples / "litellm" / "model_prices_and_context_window.json").read_text())
    write_gzip(DATA_DIR / "litellm_model_prices.json.gz", litellm)
    write_gzip(DATA_DIR / "models_dev_api.json.gz", models_dev_api(samples))


if __name__ == "__main__":
    main(sys.argv[1:])
