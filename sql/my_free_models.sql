-- Every active model that costs nothing at the margin: OpenRouter's free variants, local Ollama
-- models, and providers whose free tier the operator declared. Largest context window first.
SELECT
    provider_id,
    model_id,
    name,
    is_free,
    cost_per_1k,
    specs,
    status,
    CAST(specs ->> 'context_window' AS BIGINT) AS context_window,
    last_seen_at
FROM model_registry
WHERE is_free
  AND status = 'active'
ORDER BY context_window DESC NULLS LAST, provider_id, model_id
