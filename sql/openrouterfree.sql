-- OpenRouter's free models that can call tools (a view on the my_free_models view).
SELECT *
FROM my_free_models
WHERE provider_id = 'openrouter'
  AND CAST(specs -> 'capabilities' ->> 'tools' AS BOOLEAN)
