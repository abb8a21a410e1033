//! Model definitions and prices in PostgreSQL (`models`, `pricing_tiers`, `model_prices`,
//! `model_catalog_state`; see `sql/postgres/0004_models.sql`): the API's reads and writes, the
//! shipped set `migrate` loads from `sql/models/default-models.json`, and [`ModelCatalog`], the
//! per-process cache the matching reads through.
//!
//! Every write (a project's model created or deleted, the shipped set reloaded) moves
//! `model_catalog_state.epoch` forward in its own transaction; a [`ModelCatalog`] asks for the
//! epoch at most every [`ModelCatalog::refresh`] and drops everything it holds when it moved, so
//! a change reaches every process within that interval.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use crate::domain::model::{
    self, ModelDefinition, NewModel, Price, PricingTier, TierCondition, Unit,
};
use crate::domain::pricing::{ModelIndex, Models, PricedModel};
use crate::domain::project::ProjectId;

/// The shipped model definitions, compiled into the binary.
pub const SHIPPED_MODELS: &str = include_str!("../../sql/models/default-models.json");

const MODEL_COLUMNS: &str = "id, project_id, model_name, match_pattern, start_date, unit, \
     tokenizer_id, tokenizer_config, created_at, updated_at";

fn model_from_row(row: &Row) -> ModelDefinition {
    ModelDefinition {
        id: row.get("id"),
        project_id: row.get("project_id"),
        model_name: row.get("model_name"),
        match_pattern: row.get("match_pattern"),
        start_date: row.get("start_date"),
        unit: row
            .get::<_, Option<String>>("unit")
            .and_then(|u| Unit::parse(&u)),
        tokenizer_id: row.get("tokenizer_id"),
        tokenizer_config: row.get("tokenizer_config"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        tiers: Vec::new(),
    }
}

/// Fills each model's tiers, by ascending priority, with their prices.
async fn with_tiers(
    client: &tokio_postgres::Client,
    mut models: Vec<ModelDefinition>,
) -> anyhow::Result<Vec<ModelDefinition>> {
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    let rows = client
        .query(
            "SELECT t.id, t.model_id, t.name, t.is_default, t.priority, t.conditions,
                    p.usage_type, p.price::text AS price
             FROM pricing_tiers t
             LEFT JOIN model_prices p ON p.pricing_tier_id = t.id
             WHERE t.model_id = ANY($1)
             ORDER BY t.model_id, t.priority, p.usage_type",
            &[&ids],
        )
        .await
        .context("postgres: reading pricing tiers")?;
    let mut tiers: HashMap<String, Vec<PricingTier>> = HashMap::new();
    for row in rows {
        let model_id: String = row.get("model_id");
        let tier_id: String = row.get("id");
        let list = tiers.entry(model_id).or_default();
        if list.last().is_none_or(|t| t.id != tier_id) {
            let conditions: Value = row.get("conditions");
            list.push(PricingTier {
                id: tier_id,
                name: row.get("name"),
                is_default: row.get("is_default"),
                priority: row.get("priority"),
                // Written only through validation; a condition this binary cannot read (a
                // newer kind) is left out rather than failing the whole model.
                conditions: conditions
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .filter_map(|c| serde_json::from_value::<TierCondition>(c.clone()).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
                prices: BTreeMap::new(),
            });
        }
        if let (Some(usage_type), Some(price)) = (
            row.get::<_, Option<String>>("usage_type"),
            row.get::<_, Option<String>>("price"),
        ) {
            if let (Some(tier), Some(price)) = (list.last_mut(), Price::parse(&price)) {
                tier.prices.insert(usage_type, price);
            }
        }
    }
    for m in &mut models {
        m.tiers = tiers.remove(&m.id).unwrap_or_default();
    }
    Ok(models)
}

/// A page of the models a project sees (its own and the shipped ones), in Langfuse's order:
/// by name, unit, then newest start date. Returns the page and the total.
pub async fn list(
    pool: &Pool,
    project: &ProjectId,
    offset: u64,
    limit: u64,
) -> anyhow::Result<(Vec<ModelDefinition>, u64)> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {MODEL_COLUMNS} FROM models
                 WHERE project_id = $1 OR project_id IS NULL
                 ORDER BY model_name COLLATE \"C\", unit NULLS LAST, start_date DESC NULLS LAST, id
                 OFFSET $2 LIMIT $3"
            ),
            &[&project.as_str(), &(offset as i64), &(limit as i64)],
        )
        .await
        .context("postgres: listing models")?;
    let total: i64 = client
        .query_one(
            "SELECT count(*) FROM models WHERE project_id = $1 OR project_id IS NULL",
            &[&project.as_str()],
        )
        .await?
        .get(0);
    let models = with_tiers(&client, rows.iter().map(model_from_row).collect()).await?;
    Ok((models, total as u64))
}

/// A model the project sees: its own or a shipped one.
pub async fn get(
    pool: &Pool,
    project: &ProjectId,
    id: &str,
) -> anyhow::Result<Option<ModelDefinition>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {MODEL_COLUMNS} FROM models
                 WHERE id = $1 AND (project_id = $2 OR project_id IS NULL)"
            ),
            &[&id, &project.as_str()],
        )
        .await
        .context("postgres: reading a model")?;
    let Some(row) = row else { return Ok(None) };
    Ok(with_tiers(&client, vec![model_from_row(&row)]).await?.pop())
}

/// The default tier's `input`, `output` and `total` prices of the models `ids` the project sees,
/// by model id, as decimal text: what reads of observations answer as `inputPrice`/`outputPrice`/`totalPrice`
/// (the model's current prices, as Langfuse answers them; the stored costs do not change with
/// them). One query for all the models of a page.
pub async fn default_prices(
    pool: &Pool,
    project: &ProjectId,
    ids: &[&str],
) -> anyhow::Result<HashMap<String, BTreeMap<String, String>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT p.model_id, p.usage_type, p.price::text AS price
             FROM model_prices p
             JOIN pricing_tiers t ON t.id = p.pricing_tier_id
             JOIN models m ON m.id = p.model_id
             WHERE p.model_id = ANY($1) AND t.is_default
               AND (m.project_id = $2 OR m.project_id IS NULL)
               AND p.usage_type IN ('input', 'output', 'total')",
            &[&ids, &project.as_str()],
        )
        .await
        .context("postgres: reading models' prices")?;
    let mut prices: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for row in rows {
        let price: String = row.get("price");
        // `numeric` text keeps the column's trailing zeros; the price is the number without them.
        let price = match price.contains('.') {
            true => price
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string(),
            false => price,
        };
        prices
            .entry(row.get("model_id"))
            .or_default()
            .insert(row.get("usage_type"), price);
    }
    Ok(prices)
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("Model name '{0}' already exists in project")]
    NameTaken(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Writes a project's model with its tiers and prices, in one transaction with the epoch.
pub async fn create(
    pool: &Pool,
    project: &ProjectId,
    new: &NewModel,
) -> Result<ModelDefinition, CreateError> {
    let mut client = pool.get().await.map_err(anyhow::Error::from)?;
    let tx = client.transaction().await.map_err(anyhow::Error::from)?;
    let id = uuid::Uuid::new_v4().to_string();
    let inserted = tx
        .execute(
            "INSERT INTO models (id, project_id, model_name, match_pattern, start_date, unit,
                                 tokenizer_id, tokenizer_config)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (project_id, model_name) WHERE project_id IS NOT NULL DO NOTHING",
            &[
                &id,
                &project.as_str(),
                &new.model_name,
                &new.match_pattern,
                &new.start_date,
                &new.unit.map(Unit::as_str),
                &new.tokenizer_id,
                &new.tokenizer_config,
            ],
        )
        .await
        .context("postgres: writing a model")?;
    if inserted == 0 {
        return Err(CreateError::NameTaken(new.model_name.clone()));
    }
    for tier in &new.tiers {
        // Flat prices make the default tier; it takes the id Langfuse gives it.
        let tier_id = if tier.is_default {
            format!("{id}_tier_default")
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        tx.execute(
            "INSERT INTO pricing_tiers (id, model_id, name, is_default, priority, conditions)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &tier_id,
                &id,
                &tier.name,
                &tier.is_default,
                &tier.priority,
                &serde_json::to_value(&tier.conditions).map_err(anyhow::Error::from)?,
            ],
        )
        .await
        .context("postgres: writing a pricing tier")?;
        let usage_types: Vec<&str> = tier.prices.keys().map(String::as_str).collect();
        let prices: Vec<&str> = tier.prices.values().map(Price::as_str).collect();
        tx.execute(
            "INSERT INTO model_prices (pricing_tier_id, model_id, usage_type, price)
             SELECT $1, $2, u, p::numeric FROM unnest($3::text[], $4::text[]) AS x(u, p)",
            &[&tier_id, &id, &usage_types, &prices],
        )
        .await
        .context("postgres: writing prices")?;
    }
    bump_epoch(&tx).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    get(pool, project, &id)
        .await?
        .ok_or_else(|| CreateError::Other(anyhow::anyhow!("the model just written is gone")))
}

/// Deletes a project's own model; `false` when the project has no model of that id (a shipped
/// model is never deleted through a project).
pub async fn delete(pool: &Pool, project: &ProjectId, id: &str) -> anyhow::Result<bool> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let deleted = tx
        .execute(
            "DELETE FROM models WHERE id = $1 AND project_id = $2",
            &[&id, &project.as_str()],
        )
        .await
        .context("postgres: deleting a model")?;
    if deleted > 0 {
        bump_epoch(&tx).await?;
    }
    tx.commit().await?;
    Ok(deleted > 0)
}

async fn bump_epoch(tx: &tokio_postgres::Transaction<'_>) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE model_catalog_state SET epoch = epoch + 1, changed_at = now()",
        &[],
    )
    .await
    .context("postgres: moving the model epoch")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The shipped set.

/// One model of the data file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShippedModel {
    pub id: String,
    pub name: String,
    #[serde(rename = "match")]
    pub match_pattern: String,
    #[serde(default)]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(default)]
    pub unit: Option<Unit>,
    #[serde(default)]
    pub tokenizer: Option<String>,
    #[serde(default)]
    pub tokenizer_config: Option<Value>,
    /// The default tier's prices, as decimal text.
    pub prices: BTreeMap<String, String>,
    #[serde(default)]
    pub tiers: Vec<ShippedTier>,
}

/// A conditional tier of a shipped model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippedTier {
    pub id: String,
    pub name: String,
    pub priority: i32,
    pub when: Vec<TierCondition>,
    pub prices: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct ShippedFile {
    #[allow(dead_code)]
    about: Option<String>,
    models: Vec<ShippedModel>,
}

/// Reads the data file and checks it as the API checks a project's model: every pattern
/// compiles, every price is a decimal, the tiers follow Langfuse's rules, ids are unique.
pub fn parse_shipped(text: &str) -> anyhow::Result<Vec<ShippedModel>> {
    let file: ShippedFile =
        serde_json::from_str(text).context("the shipped model file is not valid")?;
    let mut ids = std::collections::HashSet::new();
    for m in &file.models {
        let fail = |what: String| anyhow::anyhow!("shipped model {} ({}): {what}", m.id, m.name);
        anyhow::ensure!(
            ids.insert(m.id.clone()),
            fail("its id is used twice".into())
        );
        model::compile_match_pattern(&m.match_pattern).map_err(fail)?;
        let mut tiers =
            vec![shipped_tier(model::STANDARD_TIER, true, 0, Vec::new(), &m.prices).map_err(fail)?];
        for t in &m.tiers {
            anyhow::ensure!(
                ids.insert(t.id.clone()),
                fail(format!("tier id {} is used twice", t.id))
            );
            tiers.push(
                shipped_tier(&t.name, false, t.priority, t.when.clone(), &t.prices)
                    .map_err(fail)?,
            );
        }
        model::validate_tiers(&tiers).map_err(fail)?;
    }
    Ok(file.models)
}

fn shipped_tier(
    name: &str,
    is_default: bool,
    priority: i32,
    conditions: Vec<TierCondition>,
    prices: &BTreeMap<String, String>,
) -> Result<model::NewTier, String> {
    let prices = prices
        .iter()
        .map(|(k, v)| {
            Price::parse(v)
                .map(|p| (k.clone(), p))
                .ok_or_else(|| format!("price {k} {v:?} is not a non-negative decimal"))
        })
        .collect::<Result<_, _>>()?;
    Ok(model::NewTier {
        name: name.to_string(),
        is_default,
        priority,
        conditions,
        prices,
    })
}

/// The id of a shipped model's default tier (Langfuse's convention).
pub fn default_tier_id(model_id: &str) -> String {
    format!("{model_id}_tier_default")
}

/// Loads the shipped set when its text differs from what was last loaded: models are updated in
/// place by id (a row whose fields are unchanged is not rewritten), models no longer in the file
/// are deleted, and tiers and prices are replaced. Project models are never touched. Runs in one
/// transaction holding the catalog row's lock, so concurrent runs take turns and the second
/// finds nothing to do. Returns the number of models loaded, or `None` when already current.
pub async fn load_shipped(pool: &Pool, text: &str) -> anyhow::Result<Option<usize>> {
    let models = parse_shipped(text)?;
    let checksum = hex::encode(Sha256::digest(text.as_bytes()));
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let current: Option<String> = tx
        .query_one(
            "SELECT shipped_checksum FROM model_catalog_state FOR UPDATE",
            &[],
        )
        .await
        .context("postgres: reading the shipped models' checksum")?
        .get(0);
    if current.as_deref() == Some(checksum.as_str()) {
        return Ok(None);
    }

    let model_rows: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m.id, "name": m.name, "match": m.match_pattern, "startDate": m.start_date,
                "unit": m.unit.map(Unit::as_str), "tokenizer": m.tokenizer,
                "tokenizerConfig": m.tokenizer_config,
            })
        })
        .collect();
    let mut tier_rows = Vec::new();
    let mut price_rows = Vec::new();
    for m in &models {
        let default_id = default_tier_id(&m.id);
        let mut push = |id: &str,
                        name: &str,
                        default: bool,
                        priority: i32,
                        when: Value,
                        prices: &BTreeMap<String, String>| {
            tier_rows.push(json!({
                "id": id, "modelId": m.id, "name": name, "isDefault": default,
                "priority": priority, "conditions": when,
            }));
            for (usage_type, price) in prices {
                price_rows.push(json!({
                    "tierId": id, "modelId": m.id, "usageType": usage_type, "price": price,
                }));
            }
        };
        push(
            &default_id,
            model::STANDARD_TIER,
            true,
            0,
            json!([]),
            &m.prices,
        );
        for t in &m.tiers {
            push(
                &t.id,
                &t.name,
                false,
                t.priority,
                serde_json::to_value(&t.when)?,
                &t.prices,
            );
        }
    }
    let model_rows = Value::Array(model_rows);
    tx.execute(
        "INSERT INTO models (id, project_id, model_name, match_pattern, start_date, unit,
                             tokenizer_id, tokenizer_config)
         SELECT m.id, NULL, m.name, m.match, m.\"startDate\", m.unit, m.tokenizer, m.\"tokenizerConfig\"
         FROM jsonb_to_recordset($1::jsonb) AS m(id text, name text, match text,
              \"startDate\" timestamptz, unit text, tokenizer text, \"tokenizerConfig\" jsonb)
         ON CONFLICT (id) DO UPDATE SET
             model_name = EXCLUDED.model_name, match_pattern = EXCLUDED.match_pattern,
             start_date = EXCLUDED.start_date, unit = EXCLUDED.unit,
             tokenizer_id = EXCLUDED.tokenizer_id, tokenizer_config = EXCLUDED.tokenizer_config,
             updated_at = now()
         WHERE models.project_id IS NULL
           AND (models.model_name, models.match_pattern, models.start_date, models.unit,
                models.tokenizer_id, models.tokenizer_config)
               IS DISTINCT FROM
               (EXCLUDED.model_name, EXCLUDED.match_pattern, EXCLUDED.start_date, EXCLUDED.unit,
                EXCLUDED.tokenizer_id, EXCLUDED.tokenizer_config)",
        &[&model_rows],
    )
    .await
    .context("postgres: writing shipped models")?;
    tx.execute(
        "DELETE FROM models WHERE project_id IS NULL
           AND id NOT IN (SELECT e->>'id' FROM jsonb_array_elements($1::jsonb) AS e)",
        &[&model_rows],
    )
    .await
    .context("postgres: deleting shipped models no longer shipped")?;
    tx.execute(
        "DELETE FROM pricing_tiers
         WHERE model_id IN (SELECT id FROM models WHERE project_id IS NULL)",
        &[],
    )
    .await
    .context("postgres: replacing shipped tiers")?;
    tx.execute(
        "INSERT INTO pricing_tiers (id, model_id, name, is_default, priority, conditions)
         SELECT t.id, t.\"modelId\", t.name, t.\"isDefault\", t.priority, t.conditions
         FROM jsonb_to_recordset($1::jsonb) AS t(id text, \"modelId\" text, name text,
              \"isDefault\" boolean, priority integer, conditions jsonb)",
        &[&Value::Array(tier_rows)],
    )
    .await
    .context("postgres: writing shipped tiers")?;
    tx.execute(
        "INSERT INTO model_prices (pricing_tier_id, model_id, usage_type, price)
         SELECT p.\"tierId\", p.\"modelId\", p.\"usageType\", p.price::numeric
         FROM jsonb_to_recordset($1::jsonb) AS p(\"tierId\" text, \"modelId\" text,
              \"usageType\" text, price text)",
        &[&Value::Array(price_rows)],
    )
    .await
    .context("postgres: writing shipped prices")?;
    tx.execute(
        "UPDATE model_catalog_state
         SET shipped_checksum = $1, epoch = epoch + 1, changed_at = now()",
        &[&checksum],
    )
    .await?;
    tx.commit()
        .await
        .context("postgres: committing shipped models")?;
    Ok(Some(models.len()))
}

// ---------------------------------------------------------------------------------------------
// The cache.

/// How often a [`ModelCatalog`] asks whether the models changed, unless told otherwise.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(2);

type Compiled = Models;

#[derive(Default)]
struct CacheState {
    epoch: Option<i64>,
    checked_at: Option<Instant>,
    shipped: Option<Compiled>,
    projects: HashMap<String, Arc<ModelIndex>>,
}

/// The models each process matches observations against, held in memory: the shipped set and
/// each project's models, loaded on first use. It asks PostgreSQL for the catalog epoch at most
/// every `refresh` and drops what it holds when the epoch moved, so a price change or a new
/// project model is used within `refresh` of its commit.
pub struct ModelCatalog {
    pool: Pool,
    refresh: Duration,
    state: Mutex<CacheState>,
    /// Held while a miss loads and compiles: concurrent misses (every shard reader of a worker
    /// that just started) wait for that one load instead of each compiling the whole catalog.
    loading: tokio::sync::Mutex<()>,
}

impl ModelCatalog {
    pub fn new(pool: Pool, refresh: Duration) -> ModelCatalog {
        ModelCatalog {
            pool,
            refresh,
            state: Mutex::new(CacheState::default()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn refresh(&self) -> Duration {
        self.refresh
    }

    /// The model `model_name` (of an observation of `project_id` started at `at`) is priced by,
    /// with its tiers; `None` when no model matches.
    pub async fn find(
        &self,
        project_id: &str,
        model_name: &str,
        at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<Option<Arc<ModelDefinition>>> {
        Ok(self
            .index(project_id)
            .await?
            .find(model_name, at)
            .map(|m| m.definition.clone()))
    }

    /// The models that price `project_id`'s observations (its own, then the shipped ones),
    /// compiled once per change of the catalog and shared until the next.
    pub async fn index(&self, project_id: &str) -> anyhow::Result<Arc<ModelIndex>> {
        self.check_epoch().await?;
        self.project(project_id).await
    }

    /// Loads the shipped models (the costly part of a first lookup) ahead of any.
    pub async fn warm(&self) -> anyhow::Result<()> {
        self.check_epoch().await?;
        self.shipped().await.map(|_| ())
    }

    async fn check_epoch(&self) -> anyhow::Result<()> {
        let due = {
            let state = self.state.lock().expect("model cache lock");
            state.checked_at.is_none_or(|t| t.elapsed() >= self.refresh)
        };
        if !due {
            return Ok(());
        }
        let client = self.pool.get().await?;
        let epoch: i64 = client
            .query_one("SELECT epoch FROM model_catalog_state", &[])
            .await
            .context("postgres: reading the model epoch")?
            .get(0);
        let mut state = self.state.lock().expect("model cache lock");
        if state.epoch != Some(epoch) {
            *state = CacheState {
                epoch: Some(epoch),
                ..CacheState::default()
            };
        }
        state.checked_at = Some(Instant::now());
        Ok(())
    }

    async fn shipped(&self) -> anyhow::Result<Compiled> {
        let epoch = {
            let state = self.state.lock().expect("model cache lock");
            if let Some(s) = &state.shipped {
                return Ok(s.clone());
            }
            state.epoch
        };
        let loaded = self.load(None).await?;
        let mut state = self.state.lock().expect("model cache lock");
        // Kept only if no newer epoch was seen while loading: what was read may predate it.
        if state.epoch == epoch {
            state.shipped = Some(loaded.clone());
        }
        Ok(loaded)
    }

    async fn project(&self, project_id: &str) -> anyhow::Result<Arc<ModelIndex>> {
        let cached = |catalog: &ModelCatalog| {
            let state = catalog.state.lock().expect("model cache lock");
            match state.projects.get(project_id) {
                Some(p) => Ok(p.clone()),
                None => Err(state.epoch),
            }
        };
        if let Ok(p) = cached(self) {
            return Ok(p);
        }
        let _loading = self.loading.lock().await;
        let epoch = match cached(self) {
            Ok(p) => return Ok(p),
            Err(epoch) => epoch,
        };
        let shipped = self.shipped().await?;
        let loaded = Arc::new(ModelIndex::new(self.load(Some(project_id)).await?, shipped));
        let mut state = self.state.lock().expect("model cache lock");
        if state.epoch == epoch {
            state
                .projects
                .insert(project_id.to_string(), loaded.clone());
        }
        Ok(loaded)
    }

    async fn load(&self, project_id: Option<&str>) -> anyhow::Result<Compiled> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {MODEL_COLUMNS} FROM models
                     WHERE project_id IS NOT DISTINCT FROM $1"
                ),
                &[&project_id],
            )
            .await
            .context("postgres: reading models")?;
        let models = with_tiers(&client, rows.iter().map(model_from_row).collect()).await?;
        Ok(Arc::new(
            models
                .into_iter()
                .filter_map(PricedModel::compile)
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::Matchable;

    #[test]
    fn the_shipped_file_is_valid_and_covers_the_vendors() {
        let models = parse_shipped(SHIPPED_MODELS).unwrap();
        assert!(models.len() > 150);
        let shipped: Vec<Matchable<ModelDefinition>> = models
            .iter()
            .map(|m| {
                Matchable::new(ModelDefinition {
                    id: m.id.clone(),
                    project_id: None,
                    model_name: m.name.clone(),
                    match_pattern: m.match_pattern.clone(),
                    start_date: m.start_date,
                    unit: m.unit,
                    tokenizer_id: m.tokenizer.clone(),
                    tokenizer_config: m.tokenizer_config.clone(),
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                    tiers: Vec::new(),
                })
                .unwrap()
            })
            .collect();
        // A name of each vendor, as its SDKs and gateways send it, and the model it prices by.
        for (name, expected) in [
            ("gpt-4o", "gpt-4o"),
            ("openai/gpt-4o", "gpt-4o"),
            ("azure/gpt-4o", "gpt-4o"),
            ("gpt-35-turbo-0125", "gpt-3.5-turbo-0125"),
            ("GPT-4o-mini", "gpt-4o-mini"),
            ("claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20240620"),
            (
                "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
                "claude-3-5-sonnet-20240620",
            ),
            ("gemini-2.5-pro", "gemini-2.5-pro"),
            ("mistral-large-latest", "mistral-large-2512"),
            ("mistral/codestral-latest", "codestral-2508"),
            ("meta.llama3-3-70b-instruct-v1:0", "llama-3.3-70b-instruct"),
            ("deepseek-chat", "deepseek-chat"),
            ("us.amazon.nova-pro-v1:0", "amazon.nova-pro"),
        ] {
            let m = model::match_model(&[], &shipped, name, Some(Utc::now()));
            assert_eq!(m.map(|m| m.model_name.as_str()), Some(expected), "{name}");
        }
        assert!(model::match_model(&[], &shipped, "my-own-model", None).is_none());
    }

    #[test]
    fn a_broken_shipped_file_is_refused_with_the_model_named() {
        let text =
            r#"{"models": [{"id": "x", "name": "x", "match": "(", "prices": {"input": "1"}}]}"#;
        let err = format!("{:#}", parse_shipped(text).unwrap_err());
        assert!(err.contains("shipped model x"), "{err}");
        let text =
            r#"{"models": [{"id": "x", "name": "x", "match": "x", "prices": {"input": "-1"}}]}"#;
        assert!(parse_shipped(text).is_err());
        let text = r#"{"models": [{"id": "x", "name": "x", "match": "x", "prices": {}}]}"#;
        assert!(parse_shipped(text).is_err());
    }
}
