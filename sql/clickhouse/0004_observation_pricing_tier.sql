-- The pricing tier an observation's cost was computed with, as Langfuse stores it: the worker prices
-- an observation when it writes it (model matched by name and start time, tier chosen by its usage),
-- so a later price change does not rewrite the costs already stored, and these say which tier they
-- came from. Null when no model matched or there was no usage to choose a tier by.
ALTER TABLE observations ADD COLUMN IF NOT EXISTS usage_pricing_tier_id Nullable(String) AFTER total_cost;

ALTER TABLE observations ADD COLUMN IF NOT EXISTS usage_pricing_tier_name Nullable(String) AFTER usage_pricing_tier_id;
