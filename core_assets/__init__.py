"""core-model-registry: one validated table of every LLM model an orchestrator can use."""
