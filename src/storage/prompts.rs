//! Prompt queries on PostgreSQL (`sql/postgres/0002_prompts.sql`).
//!
//! Every write runs in one transaction that first increments the project's row in
//! `prompt_epochs`. That row lock serializes the project's prompt writes: concurrent creates of one
//! name get consecutive versions, and the checks of composed prompts (references exist, no cycle,
//! not too deep) see a state no other write changes under them. The incremented epoch commits
//! with the write, so a cache that learns the epoch can never have missed the data.
//!
//! Reads of a composed prompt run in one read-only snapshot, so a label moved while it is
//! resolved cannot mix two states.

use std::collections::HashSet;

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde_json::Value;
use tokio_postgres::IsolationLevel;

use crate::domain::project::ProjectId;
use crate::domain::prompt::{
    self, broken_by_deletion, labels_after_update, labels_of_new_version, Dependent, NewPrompt,
    PromptNode, PromptType, Reference, Resolved, Selector, LATEST_LABEL, MAX_NESTING_DEPTH,
};

/// One stored version.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptRecord {
    pub id: String,
    pub project_id: String,
    pub name: String,
    pub version: i32,
    pub kind: PromptType,
    pub prompt: Value,
    pub config: Value,
    pub tags: Vec<String>,
    /// In the order they were given.
    pub labels: Vec<String>,
    pub commit_message: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PromptRecord {
    pub fn node(&self) -> PromptNode {
        PromptNode {
            id: self.id.clone(),
            name: self.name.clone(),
            version: self.version,
            kind: self.kind,
            content: self.prompt.clone(),
            labels: self.labels.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// Nothing matches; the message names what was asked for.
    #[error("{0}")]
    NotFound(String),
    /// The write would break a rule; nothing was written.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

impl From<tokio_postgres::Error> for PromptError {
    fn from(err: tokio_postgres::Error) -> Self {
        PromptError::Store(err.into())
    }
}

impl From<deadpool_postgres::PoolError> for PromptError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        PromptError::Store(anyhow::Error::new(err).context("no PostgreSQL connection"))
    }
}

const COLUMNS: &str = "p.id, p.project_id, p.name, p.version, p.type, p.prompt, p.config, p.tags, \
     p.commit_message, p.created_by, p.created_at, p.updated_at, \
     ARRAY(SELECT l.label FROM prompt_labels l \
            WHERE l.project_id = p.project_id AND l.name = p.name AND l.version = p.version \
            ORDER BY l.seq) AS labels";

fn record(row: &tokio_postgres::Row) -> Result<PromptRecord, PromptError> {
    let kind: String = row.get("type");
    Ok(PromptRecord {
        id: row.get("id"),
        project_id: row.get("project_id"),
        name: row.get("name"),
        version: row.get("version"),
        kind: PromptType::parse(&kind)
            .with_context(|| format!("stored prompt has unknown type {kind:?}"))?,
        prompt: row.get("prompt"),
        config: row.get("config"),
        tags: row.get("tags"),
        labels: row.get("labels"),
        commit_message: row.get("commit_message"),
        created_by: row.get("created_by"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

/// The version `selector` picks, if any.
pub async fn find<C: GenericClient>(
    client: &C,
    project: &ProjectId,
    name: &str,
    selector: &Selector,
) -> Result<Option<PromptRecord>, PromptError> {
    let project_id = project.as_str();
    let row = match selector {
        Selector::Version(version) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM prompts p \
                  WHERE p.project_id = $1 AND p.name = $2 AND p.version = $3"
            );
            let statement = client.prepare_cached(&sql).await?;
            client
                .query_opt(&statement, &[&project_id, &name, version])
                .await?
        }
        Selector::Label(label) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM prompt_labels x \
                   JOIN prompts p ON p.project_id = x.project_id AND p.name = x.name \
                                 AND p.version = x.version \
                  WHERE x.project_id = $1 AND x.name = $2 AND x.label = $3"
            );
            let statement = client.prepare_cached(&sql).await?;
            client
                .query_opt(&statement, &[&project_id, &name, label])
                .await?
        }
    };
    row.as_ref().map(record).transpose()
}

fn selector_of(reference: &Reference) -> Selector {
    match reference {
        Reference::Version { version, .. } => Selector::Version(*version),
        Reference::Label { label, .. } => Selector::Label(label.clone()),
    }
}

/// The versions `root` includes, directly or not, as far as a resolution can descend.
async fn closure<C: GenericClient>(
    client: &C,
    project: &ProjectId,
    root: &PromptNode,
) -> Result<Vec<PromptNode>, PromptError> {
    let mut nodes: Vec<PromptNode> = Vec::new();
    let mut asked: HashSet<Reference> = HashSet::new();
    let mut frontier = vec![root.clone()];
    // A resolution fails at level MAX_NESTING_DEPTH; one level more tells it why.
    for _ in 0..=MAX_NESTING_DEPTH {
        let mut next = Vec::new();
        for node in &frontier {
            for reference in prompt::references(&node.content).unwrap_or_default() {
                if !asked.insert(reference.clone()) {
                    continue;
                }
                let found =
                    find(client, project, reference.name(), &selector_of(&reference)).await?;
                if let Some(found) = found {
                    if found.id != root.id && !nodes.iter().any(|n| n.id == found.id) {
                        let node = found.node();
                        nodes.push(node.clone());
                        next.push(node);
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(nodes)
}

async fn resolve_with<C: GenericClient>(
    client: &C,
    project: &ProjectId,
    root: &PromptNode,
) -> Result<Result<Resolved, prompt::ResolveError>, PromptError> {
    let mut nodes = closure(client, project, root).await?;
    nodes.push(root.clone());
    let lookup = |r: &Reference| nodes.iter().find(|n| n.is_target_of(r));
    Ok(prompt::resolve(root, &lookup))
}

/// The version `selector` picks with its references resolved, or `None`.
pub async fn find_resolved(
    pool: &Pool,
    project: &ProjectId,
    name: &str,
    selector: &Selector,
) -> Result<Option<(PromptRecord, Resolved)>, PromptError> {
    let mut client = pool.get().await?;
    let Some(found) = find(&client, project, name, selector).await? else {
        return Ok(None);
    };
    if prompt::references(&found.prompt)
        .unwrap_or_default()
        .is_empty()
    {
        let content = found.prompt.clone();
        return Ok(Some((
            found,
            Resolved {
                content,
                graph: None,
            },
        )));
    }
    // Read again, with everything it includes, from one snapshot.
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let Some(found) = find(&tx, project, name, selector).await? else {
        return Ok(None);
    };
    let resolved = resolve_with(&tx, project, &found.node())
        .await?
        // Writes refuse graphs that do not resolve, so this is a broken invariant, not bad input.
        .map_err(|e| {
            anyhow::anyhow!(
                "stored prompt '{}' version {} does not resolve: {e}",
                found.name,
                found.version
            )
        })?;
    tx.commit().await?;
    Ok(Some((found, resolved)))
}

/// Epochs grow with the clock (microseconds) as well as by one per write, so that they keep
/// growing even across a restored database or a re-created project: caches only ever move
/// forward, and a smaller epoch would leave them stale.
fn clock_epoch() -> i64 {
    Utc::now().timestamp_micros()
}

/// Serializes the project's prompt writes and returns the epoch this write commits.
async fn bump_epoch(
    tx: &deadpool_postgres::Transaction<'_>,
    project_id: &str,
) -> Result<i64, PromptError> {
    let row = tx
        .query_one(
            "INSERT INTO prompt_epochs (project_id, epoch) VALUES ($1, $2)
             ON CONFLICT (project_id)
             DO UPDATE SET epoch = greatest(prompt_epochs.epoch + 1, $2), changed_at = now()
             RETURNING epoch",
            &[&project_id, &clock_epoch()],
        )
        .await?;
    Ok(row.get(0))
}

/// Gives `labels`, in order, to one version, taking them from any other version of the name.
/// Returns the versions that lost a label.
async fn assign_labels(
    tx: &deadpool_postgres::Transaction<'_>,
    project_id: &str,
    name: &str,
    version: i32,
    labels: &[String],
) -> Result<Vec<i32>, PromptError> {
    let moved: Vec<i32> = tx
        .query(
            "DELETE FROM prompt_labels
              WHERE project_id = $1 AND name = $2 AND label = ANY($3)
          RETURNING version",
            &[&project_id, &name, &labels],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, i32>(0))
        .filter(|v| *v != version)
        .collect();
    for label in labels {
        tx.execute(
            "INSERT INTO prompt_labels (project_id, name, label, version) VALUES ($1, $2, $3, $4)",
            &[&project_id, &name, label, &version],
        )
        .await?;
    }
    touch(tx, project_id, name, &moved).await?;
    Ok(moved)
}

async fn touch(
    tx: &deadpool_postgres::Transaction<'_>,
    project_id: &str,
    name: &str,
    versions: &[i32],
) -> Result<(), PromptError> {
    if !versions.is_empty() {
        tx.execute(
            "UPDATE prompts SET updated_at = now()
              WHERE project_id = $1 AND name = $2 AND version = ANY($3)",
            &[&project_id, &name, &versions],
        )
        .await?;
    }
    Ok(())
}

/// Refuses the write when a prompt that now includes `changed` (through its version or one of its
/// labels, at any distance) no longer resolves, or when `changed` itself does not (`check_self`).
async fn check_graphs(
    tx: &deadpool_postgres::Transaction<'_>,
    project: &ProjectId,
    changed: &PromptRecord,
    check_self: bool,
) -> Result<(), PromptError> {
    let project_id = project.as_str();
    if check_self {
        if let Err(err) = resolve_with(tx, project, &changed.node()).await? {
            return Err(PromptError::Invalid(format!(
                "prompt '{}' cannot be resolved: {err}",
                changed.name
            )));
        }
    }
    let mut seen: HashSet<String> = HashSet::from([changed.id.clone()]);
    let mut frontier = vec![changed.clone()];
    let mut ancestors = Vec::new();
    for _ in 0..MAX_NESTING_DEPTH {
        let mut next = Vec::new();
        for node in &frontier {
            let sql = format!(
                "SELECT DISTINCT {COLUMNS} FROM prompt_dependencies d
                   JOIN prompts p ON p.id = d.parent_id
                  WHERE d.project_id = $1 AND d.child_name = $2
                    AND (d.child_version = $3 OR d.child_label = ANY($4))"
            );
            for row in tx
                .query(
                    &sql,
                    &[&project_id, &node.name, &node.version, &node.labels],
                )
                .await?
            {
                let parent = record(&row)?;
                if seen.insert(parent.id.clone()) {
                    next.push(parent);
                }
            }
        }
        if next.is_empty() {
            break;
        }
        ancestors.extend(next.iter().cloned());
        frontier = next;
    }
    for ancestor in ancestors {
        if let Err(err) = resolve_with(tx, project, &ancestor.node()).await? {
            return Err(PromptError::Invalid(format!(
                "this change would break prompt '{}' version {}, which includes '{}': {err}",
                ancestor.name, ancestor.version, changed.name
            )));
        }
    }
    Ok(())
}

/// Creates the next version of `new.name`. Returns it (unresolved, as stored) and the epoch.
pub async fn create(
    pool: &Pool,
    project: &ProjectId,
    new: &NewPrompt,
    created_by: &str,
) -> Result<(PromptRecord, i64), PromptError> {
    let project_id = project.as_str();
    let references = prompt::references(&new.content).map_err(PromptError::Invalid)?;
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let epoch = bump_epoch(&tx, project_id).await?;
    let latest = tx
        .query_opt(
            "SELECT version, type, tags FROM prompts
              WHERE project_id = $1 AND name = $2 ORDER BY version DESC LIMIT 1",
            &[&project_id, &new.name],
        )
        .await?;
    let (version, previous_tags) = match &latest {
        Some(row) => {
            let kind: String = row.get("type");
            if kind != new.kind.as_str() {
                return Err(PromptError::Invalid(format!(
                    "prompt '{}' is a {kind} prompt and its versions keep that type; \
                     create a prompt with another name for a {} prompt",
                    new.name,
                    new.kind.as_str()
                )));
            }
            (
                row.get::<_, i32>("version") + 1,
                row.get::<_, Vec<String>>("tags"),
            )
        }
        None => (1, Vec::new()),
    };
    let tags = new.tags.clone().unwrap_or_else(|| previous_tags.clone());
    let id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO prompts (id, project_id, name, version, type, prompt, config, tags,
                              commit_message, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &id,
            &project_id,
            &new.name,
            &version,
            &new.kind.as_str(),
            &new.content,
            &new.config,
            &tags,
            &new.commit_message,
            &created_by,
        ],
    )
    .await?;
    assign_labels(
        &tx,
        project_id,
        &new.name,
        version,
        &labels_of_new_version(&new.labels),
    )
    .await?;
    let as_set = |t: &[String]| t.iter().cloned().collect::<HashSet<String>>();
    if latest.is_some() && as_set(&tags) != as_set(&previous_tags) {
        // Tags belong to the name: every version carries the new list.
        tx.execute(
            "UPDATE prompts SET tags = $3, updated_at = now()
              WHERE project_id = $1 AND name = $2 AND version <> $4",
            &[&project_id, &new.name, &tags, &version],
        )
        .await?;
    }
    for reference in &references {
        let (child_version, child_label) = match reference {
            Reference::Version { version, .. } => (Some(*version), None),
            Reference::Label { label, .. } => (None, Some(label.as_str())),
        };
        tx.execute(
            "INSERT INTO prompt_dependencies (project_id, parent_id, child_name, child_version, child_label)
             VALUES ($1, $2, $3, $4, $5)",
            &[&project_id, &id, &reference.name(), &child_version, &child_label],
        )
        .await?;
    }
    let created = find(&tx, project, &new.name, &Selector::Version(version))
        .await?
        .context("the version just inserted is not readable")?;
    check_graphs(&tx, project, &created, true).await?;
    tx.commit().await?;
    Ok((created, epoch))
}

/// Adds `new_labels` to one version (taking them from the others). Returns it and the epoch.
pub async fn update_labels(
    pool: &Pool,
    project: &ProjectId,
    name: &str,
    version: i32,
    new_labels: &[String],
) -> Result<(PromptRecord, i64), PromptError> {
    let project_id = project.as_str();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let epoch = bump_epoch(&tx, project_id).await?;
    let selector = Selector::Version(version);
    let current = find(&tx, project, name, &selector).await?.ok_or_else(|| {
        PromptError::NotFound(format!(
            "Prompt '{name}' version {version} not found in project"
        ))
    })?;
    let labels = labels_after_update(&current.labels, new_labels);
    assign_labels(&tx, project_id, name, version, &labels).await?;
    touch(&tx, project_id, name, &[version]).await?;
    let updated = find(&tx, project, name, &selector)
        .await?
        .context("the version just updated is not readable")?;
    check_graphs(&tx, project, &updated, false).await?;
    tx.commit().await?;
    Ok((updated, epoch))
}

/// Which versions `DELETE /api/public/v2/prompts/{name}` removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    All,
    Version(i32),
    Label(String),
}

/// Deletes versions of `name`. When the version labelled `latest` goes, the newest remaining
/// version takes the label. Returns the epoch.
pub async fn delete(
    pool: &Pool,
    project: &ProjectId,
    name: &str,
    which: &Deletion,
) -> Result<i64, PromptError> {
    let project_id = project.as_str();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let epoch = bump_epoch(&tx, project_id).await?;
    let sql = format!("SELECT {COLUMNS} FROM prompts p WHERE p.project_id = $1 AND p.name = $2");
    let all = tx
        .query(&sql, &[&project_id, &name])
        .await?
        .iter()
        .map(record)
        .collect::<Result<Vec<_>, _>>()?;
    let (deleted, remaining): (Vec<&PromptRecord>, Vec<&PromptRecord>) =
        all.iter().partition(|p| match which {
            Deletion::All => true,
            Deletion::Version(v) => p.version == *v,
            Deletion::Label(l) => p.labels.contains(l),
        });
    if deleted.is_empty() {
        return Err(PromptError::NotFound("Prompt not found".to_string()));
    }
    let dependents: Vec<Dependent> = tx
        .query(
            "SELECT p.name, p.version, d.child_version, d.child_label
               FROM prompt_dependencies d JOIN prompts p ON p.id = d.parent_id
              WHERE d.project_id = $1 AND d.child_name = $2 AND p.name <> $2",
            &[&project_id, &name],
        )
        .await?
        .iter()
        .map(|row| Dependent {
            parent_name: row.get(0),
            parent_version: row.get(1),
            reference: match row.get::<_, Option<i32>>(2) {
                Some(version) => Reference::Version {
                    name: name.to_string(),
                    version,
                },
                None => Reference::Label {
                    name: name.to_string(),
                    label: row.get::<_, Option<String>>(3).unwrap_or_default(),
                },
            },
        })
        .collect();
    let deleted_versions: Vec<i32> = deleted.iter().map(|p| p.version).collect();
    let remaining_labels: HashSet<String> =
        remaining.iter().flat_map(|p| p.labels.clone()).collect();
    let broken = broken_by_deletion(&dependents, &deleted_versions, &remaining_labels);
    if !broken.is_empty() {
        let list: Vec<String> = broken
            .iter()
            .map(|d| {
                format!(
                    "'{}' version {} includes {}",
                    d.parent_name, d.parent_version, d.reference
                )
            })
            .collect();
        return Err(PromptError::Invalid(format!(
            "other prompts include the versions being deleted ({}); delete or change those first",
            list.join("; ")
        )));
    }
    let ids: Vec<&str> = deleted.iter().map(|p| p.id.as_str()).collect();
    tx.execute(
        "DELETE FROM prompts WHERE project_id = $1 AND id = ANY($2)",
        &[&project_id, &ids],
    )
    .await?;
    let newest_remaining = remaining.iter().map(|p| p.version).max();
    let latest_deleted = deleted
        .iter()
        .any(|p| p.labels.iter().any(|l| l == LATEST_LABEL));
    if let (true, Some(newest)) = (latest_deleted, newest_remaining) {
        assign_labels(&tx, project_id, name, newest, &[LATEST_LABEL.to_string()]).await?;
        touch(&tx, project_id, name, &[newest]).await?;
    }
    tx.commit().await?;
    Ok(epoch)
}

/// Filters of `GET /api/public/v2/prompts`; each narrows the versions considered.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub name: Option<String>,
    pub label: Option<String>,
    pub tag: Option<String>,
    pub version: Option<i32>,
    pub from_updated_at: Option<DateTime<Utc>>,
    pub to_updated_at: Option<DateTime<Utc>>,
}

/// One name in the list, summarising its versions that match the filters.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptMeta {
    pub name: String,
    pub kind: PromptType,
    pub versions: Vec<i32>,
    pub labels: Vec<String>,
    pub tags: Vec<String>,
    pub last_updated_at: DateTime<Utc>,
    pub last_config: Value,
}

const LIST_MATCHES: &str = "
    SELECT p.name, p.version, p.type, p.config, p.tags, p.updated_at
      FROM prompts p
     WHERE p.project_id = $1
       AND ($2::text IS NULL OR p.name = $2)
       AND ($3::text IS NULL OR EXISTS (
             SELECT 1 FROM prompt_labels l
              WHERE l.project_id = p.project_id AND l.name = p.name
                AND l.version = p.version AND l.label = $3))
       AND ($4::text IS NULL OR $4 = ANY(p.tags))
       AND ($5::integer IS NULL OR p.version = $5)
       AND ($6::timestamptz IS NULL OR p.updated_at >= $6)
       AND ($7::timestamptz IS NULL OR p.updated_at < $7)";

/// One page of names (ordered by name) and the number of names matching in all.
pub async fn list(
    pool: &Pool,
    project: &ProjectId,
    filter: &ListFilter,
    page: i64,
    limit: i64,
) -> Result<(Vec<PromptMeta>, i64), PromptError> {
    let project_id = project.as_str();
    let client = pool.get().await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &project_id,
        &filter.name,
        &filter.label,
        &filter.tag,
        &filter.version,
        &filter.from_updated_at,
        &filter.to_updated_at,
    ];
    let total: i64 = client
        .query_one(
            &format!("WITH m AS ({LIST_MATCHES}) SELECT count(DISTINCT name) FROM m"),
            &params,
        )
        .await?
        .get(0);
    let sql = format!(
        "WITH m AS ({LIST_MATCHES}),
              names AS (SELECT name FROM m GROUP BY name ORDER BY name LIMIT $8 OFFSET $9)
         SELECT n.name,
                (SELECT array_agg(m.version ORDER BY m.version) FROM m WHERE m.name = n.name),
                (SELECT coalesce(array_agg(DISTINCT l.label ORDER BY l.label), '{{}}')
                   FROM m JOIN prompt_labels l
                     ON l.project_id = $1 AND l.name = m.name AND l.version = m.version
                  WHERE m.name = n.name),
                (SELECT max(m.updated_at) FROM m WHERE m.name = n.name),
                newest.type, newest.config, newest.tags
           FROM names n
           CROSS JOIN LATERAL (SELECT m.type, m.config, m.tags FROM m WHERE m.name = n.name
                                ORDER BY m.version DESC LIMIT 1) newest
          ORDER BY n.name"
    );
    let offset = (page - 1) * limit;
    let mut all_params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params.to_vec();
    all_params.push(&limit);
    all_params.push(&offset);
    let rows = client.query(&sql, &all_params).await?;
    let metas = rows
        .iter()
        .map(|row| {
            let kind: String = row.get(4);
            Ok(PromptMeta {
                name: row.get(0),
                versions: row.get(1),
                labels: row.get(2),
                last_updated_at: row.get(3),
                kind: PromptType::parse(&kind)
                    .with_context(|| format!("stored prompt has unknown type {kind:?}"))?,
                last_config: row.get(5),
                tags: row.get(6),
            })
        })
        .collect::<Result<Vec<_>, PromptError>>()?;
    Ok((metas, total))
}

/// The committed epochs of `project_ids`; a project never written to is at epoch 0.
pub async fn epochs(pool: &Pool, project_ids: &[String]) -> anyhow::Result<Vec<(String, i64)>> {
    let client = pool.get().await.context("no PostgreSQL connection")?;
    let rows = client
        .query(
            "SELECT id, coalesce(e.epoch, 0)
               FROM unnest($1::text[]) AS id
               LEFT JOIN prompt_epochs e ON e.project_id = id",
            &[&project_ids],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A prompt version as an observation names it: its project, name and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionKey {
    pub project_id: String,
    pub name: String,
    pub version: i32,
}

/// The ids of those of `versions` that exist, in any order. Across projects: the worker links
/// the observations of many projects at once, on behalf of requests authenticated when they
/// were accepted.
pub async fn ids_of_versions(
    pool: &Pool,
    versions: &[VersionKey],
) -> anyhow::Result<Vec<(VersionKey, String)>> {
    if versions.is_empty() {
        return Ok(Vec::new());
    }
    let project_ids: Vec<&str> = versions.iter().map(|v| v.project_id.as_str()).collect();
    let names: Vec<&str> = versions.iter().map(|v| v.name.as_str()).collect();
    let numbers: Vec<i32> = versions.iter().map(|v| v.version).collect();
    let client = pool.get().await.context("no PostgreSQL connection")?;
    let rows = client
        .query(
            "SELECT p.project_id, p.name, p.version, p.id
               FROM unnest($1::text[], $2::text[], $3::int4[]) AS k(project_id, name, version)
               JOIN prompts p
                 ON p.project_id = k.project_id AND p.name = k.name AND p.version = k.version",
            &[&project_ids, &names, &numbers],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let key = VersionKey {
                project_id: row.get(0),
                name: row.get(1),
                version: row.get(2),
            };
            (key, row.get(3))
        })
        .collect())
}

/// Takes `label` off one version of `name` (the web UI's "remove label"), in a transaction like
/// every other prompt write: refused when a composed prompt includes the version through that
/// label. `latest` is automatic and cannot be removed. Returns the version and the epoch.
pub async fn remove_label(
    pool: &Pool,
    project: &ProjectId,
    name: &str,
    version: i32,
    label: &str,
) -> Result<(PromptRecord, i64), PromptError> {
    if label == LATEST_LABEL {
        return Err(PromptError::Invalid(
            "'latest' always points at the newest version and cannot be removed".to_string(),
        ));
    }
    let project_id = project.as_str();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let epoch = bump_epoch(&tx, project_id).await?;
    let selector = Selector::Version(version);
    let before = find(&tx, project, name, &selector).await?.ok_or_else(|| {
        PromptError::NotFound(format!(
            "Prompt '{name}' version {version} not found in project"
        ))
    })?;
    if !before.labels.iter().any(|l| l == label) {
        return Err(PromptError::NotFound(format!(
            "Prompt '{name}' version {version} has no label '{label}'"
        )));
    }
    tx.execute(
        "DELETE FROM prompt_labels
          WHERE project_id = $1 AND name = $2 AND version = $3 AND label = $4",
        &[&project_id, &name, &version, &label],
    )
    .await?;
    touch(&tx, project_id, name, &[version]).await?;
    // The prompts that included the version through the label it had must still resolve.
    check_graphs(&tx, project, &before, false).await?;
    let updated = find(&tx, project, name, &selector)
        .await?
        .context("the version just updated is not readable")?;
    tx.commit().await?;
    Ok((updated, epoch))
}

/// Every version of `name`, newest first.
pub async fn versions(
    pool: &Pool,
    project: &ProjectId,
    name: &str,
) -> Result<Vec<PromptRecord>, PromptError> {
    let client = pool.get().await?;
    let sql = format!(
        "SELECT {COLUMNS} FROM prompts p WHERE p.project_id = $1 AND p.name = $2 \
          ORDER BY p.version DESC"
    );
    client
        .query(&sql, &[&project.as_str(), &name])
        .await?
        .iter()
        .map(record)
        .collect()
}

/// A name in the web UI's prompt list.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSummary {
    pub name: String,
    pub kind: PromptType,
    pub latest_version: i32,
    pub versions: i64,
    /// The labels of all its versions, `latest` included.
    pub labels: Vec<String>,
    pub tags: Vec<String>,
    pub last_updated_at: DateTime<Utc>,
}

/// The prompt names whose name contains `search` (any case) and that carry `tag`, ordered by
/// name: at most `limit` of them, after the first `offset`.
pub async fn search(
    pool: &Pool,
    project: &ProjectId,
    search: Option<&str>,
    tag: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<Vec<PromptSummary>, PromptError> {
    let client = pool.get().await?;
    let pattern = search.map(|s| {
        let escaped = s
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    let rows = client
        .query(
            "SELECT p.name, newest.type, max(p.version), count(*), newest.tags, max(p.updated_at),
                    ARRAY(SELECT DISTINCT l.label FROM prompt_labels l
                           WHERE l.project_id = $1 AND l.name = p.name ORDER BY l.label)
               FROM prompts p
               CROSS JOIN LATERAL (SELECT n.type, n.tags FROM prompts n
                                    WHERE n.project_id = p.project_id AND n.name = p.name
                                    ORDER BY n.version DESC LIMIT 1) newest
              WHERE p.project_id = $1
                AND ($2::text IS NULL OR p.name ILIKE $2)
                AND ($3::text IS NULL OR $3 = ANY(newest.tags))
              GROUP BY p.name, newest.type, newest.tags
              ORDER BY p.name
              LIMIT $4 OFFSET $5",
            &[&project.as_str(), &pattern, &tag, &limit, &offset],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.get(1);
            Ok(PromptSummary {
                name: row.get(0),
                kind: PromptType::parse(&kind)
                    .with_context(|| format!("stored prompt has unknown type {kind:?}"))?,
                latest_version: row.get(2),
                versions: row.get(3),
                tags: row.get(4),
                last_updated_at: row.get(5),
                labels: row.get(6),
            })
        })
        .collect()
}

/// The project's protected prompt labels, in alphabetical order.
pub async fn protected_labels(
    pool: &Pool,
    project: &ProjectId,
) -> Result<Vec<String>, PromptError> {
    let client = pool.get().await?;
    Ok(client
        .query(
            "SELECT label FROM prompt_protected_labels WHERE project_id = $1 ORDER BY label",
            &[&project.as_str()],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Protects `label` in the project (nothing happens when it already is). `latest` cannot be.
pub async fn protect_label(
    pool: &Pool,
    project: &ProjectId,
    label: &str,
) -> Result<(), PromptError> {
    prompt::validate_label(label).map_err(PromptError::Invalid)?;
    if label == LATEST_LABEL {
        return Err(PromptError::Invalid(
            "'latest' is set automatically and cannot be protected".to_string(),
        ));
    }
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO prompt_protected_labels (project_id, label) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&project.as_str(), &label],
        )
        .await?;
    Ok(())
}

pub async fn unprotect_label(
    pool: &Pool,
    project: &ProjectId,
    label: &str,
) -> Result<(), PromptError> {
    let client = pool.get().await?;
    client
        .execute(
            "DELETE FROM prompt_protected_labels WHERE project_id = $1 AND label = $2",
            &[&project.as_str(), &label],
        )
        .await?;
    Ok(())
}
