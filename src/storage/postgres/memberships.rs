//! Organizations, projects and who may do what in them: `organization_memberships` (a role per
//! person and organization) and `project_memberships` (a role on one project that replaces the
//! organization's there). Every question a page asks about access is answered here, in one query.

use deadpool_postgres::Pool;

use crate::domain::account::{check_membership_change, effective_role, MembershipRefusal, Role};
use crate::domain::project::ProjectId;

fn role_of(text: &str) -> Role {
    // The table's CHECK constraint admits only the five names.
    Role::parse(text).unwrap_or(Role::None)
}

/// A project as a person sees it on the start page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectEntry {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// An organization a person belongs to, with the projects they may read in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationEntry {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub projects: Vec<ProjectEntry>,
}

/// The organizations of `user_id`, by name, each with the projects the person may read (their
/// effective role is not NONE), by name. An organization where the person has NONE and no project
/// is left out.
pub async fn organizations_of(
    pool: &Pool,
    user_id: &str,
) -> anyhow::Result<Vec<OrganizationEntry>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT o.id, o.name, om.role, p.id, p.name, pm.role
               FROM organization_memberships om
               JOIN organizations o ON o.id = om.org_id
               LEFT JOIN projects p ON p.org_id = o.id AND p.deleted_at IS NULL
               LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = om.user_id
              WHERE om.user_id = $1
              ORDER BY lower(o.name), o.id, lower(p.name), p.id",
            &[&user_id],
        )
        .await?;
    let mut out: Vec<OrganizationEntry> = Vec::new();
    for row in rows {
        let org_id: String = row.get(0);
        if out.last().is_none_or(|o| o.id != org_id) {
            out.push(OrganizationEntry {
                id: org_id,
                name: row.get(1),
                role: role_of(row.get(2)),
                projects: Vec::new(),
            });
        }
        let org = out.last_mut().expect("pushed above");
        if let Some(project_id) = row.get::<_, Option<String>>(3) {
            let project_role = row.get::<_, Option<&str>>(5).map(role_of);
            let role = effective_role(org.role, project_role);
            if role.can_read() {
                org.projects.push(ProjectEntry {
                    id: project_id,
                    name: row.get(4),
                    role,
                });
            }
        }
    }
    out.retain(|o| o.role.can_read() || !o.projects.is_empty());
    Ok(out)
}

/// What a person may do on one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectAccess {
    pub project_id: String,
    pub project_name: String,
    pub org_id: String,
    pub org_name: String,
    /// The role on the organization.
    pub org_role: Role,
    /// The role that applies on this project.
    pub role: Role,
}

/// The access of `user_id` to the project `project_id`, or `None` when the project does not exist
/// (or is deleted) or the person is no member of its organization. The caller decides what the
/// role allows; a role of NONE is returned as such.
pub async fn project_access(
    pool: &Pool,
    user_id: &str,
    project_id: &str,
) -> anyhow::Result<Option<ProjectAccess>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT p.id, p.name, o.id, o.name, om.role, pm.role
               FROM projects p
               JOIN organizations o ON o.id = p.org_id
               JOIN organization_memberships om ON om.org_id = o.id AND om.user_id = $1
               LEFT JOIN project_memberships pm ON pm.project_id = p.id AND pm.user_id = $1
              WHERE p.id = $2 AND p.deleted_at IS NULL",
            &[&user_id, &project_id],
        )
        .await?;
    Ok(row.map(|r| {
        let org_role = role_of(r.get(4));
        ProjectAccess {
            project_id: r.get(0),
            project_name: r.get(1),
            org_id: r.get(2),
            org_name: r.get(3),
            org_role,
            role: effective_role(org_role, r.get::<_, Option<&str>>(5).map(role_of)),
        }
    }))
}

/// A person's role on an organization, with its name; `None` when they are no member.
pub async fn organization_role(
    pool: &Pool,
    user_id: &str,
    org_id: &str,
) -> anyhow::Result<Option<(String, Role)>> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT o.name, om.role FROM organization_memberships om
               JOIN organizations o ON o.id = om.org_id
              WHERE om.user_id = $1 AND om.org_id = $2",
            &[&user_id, &org_id],
        )
        .await?;
    Ok(row.map(|r| (r.get(0), role_of(r.get(1)))))
}

/// Creates an organization with `owner_id` as its owner; returns its id.
pub async fn create_organization(
    pool: &Pool,
    name: &str,
    owner_id: &str,
) -> anyhow::Result<String> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let org_id = uuid::Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO organizations (id, name) VALUES ($1, $2)",
        &[&org_id, &name],
    )
    .await?;
    tx.execute(
        "INSERT INTO organization_memberships (id, org_id, user_id, role) VALUES ($1, $2, $3, 'OWNER')",
        &[&uuid::Uuid::new_v4().to_string(), &org_id, &owner_id],
    )
    .await?;
    tx.commit().await?;
    Ok(org_id)
}

/// Creates a project in an organization; returns its id.
pub async fn create_project(pool: &Pool, org_id: &str, name: &str) -> anyhow::Result<String> {
    let client = pool.get().await?;
    let project_id = uuid::Uuid::new_v4().to_string();
    client
        .execute(
            "INSERT INTO projects (id, org_id, name) VALUES ($1, $2, $3)",
            &[&project_id, &org_id, &name],
        )
        .await?;
    Ok(project_id)
}

pub async fn rename_project(pool: &Pool, project: &ProjectId, name: &str) -> anyhow::Result<()> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE projects SET name = $2, updated_at = now() WHERE id = $1",
            &[&project.as_str(), &name],
        )
        .await?;
    Ok(())
}

/// A member of an organization, as the members table shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
}

/// The members of an organization, by address.
pub async fn members(pool: &Pool, org_id: &str) -> anyhow::Result<Vec<Member>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT u.id, u.email, u.name, om.role
               FROM organization_memberships om JOIN users u ON u.id = om.user_id
              WHERE om.org_id = $1
              ORDER BY lower(u.email)",
            &[&org_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Member {
            user_id: r.get(0),
            email: r.get(1),
            name: r.get(2),
            role: role_of(r.get(3)),
        })
        .collect())
}

/// Why a membership was not changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipError {
    /// No account has that address.
    NoSuchUser,
    /// The person is a member already (adding) or no member (changing, removing).
    AlreadyMember,
    NotAMember,
    Refused(MembershipRefusal),
}

/// Locks the organization's row, so that concurrent membership changes of one organization take
/// turns and the owner count each one checks stays true until it commits.
async fn lock_organization(
    tx: &deadpool_postgres::Transaction<'_>,
    org_id: &str,
) -> anyhow::Result<usize> {
    tx.execute(
        "SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE",
        &[&org_id],
    )
    .await?;
    let owners: i64 = tx
        .query_one(
            "SELECT count(*) FROM organization_memberships WHERE org_id = $1 AND role = 'OWNER'",
            &[&org_id],
        )
        .await?
        .get(0);
    Ok(owners as usize)
}

/// Adds the account with address `email` to the organization with `role`, on behalf of someone
/// whose role there is `actor`.
pub async fn add_member(
    pool: &Pool,
    org_id: &str,
    actor: Role,
    email: &str,
    role: Role,
) -> anyhow::Result<Result<Member, MembershipError>> {
    if !actor.may_assign(role) || role == Role::None {
        return Ok(Err(MembershipError::Refused(
            MembershipRefusal::NotPermitted,
        )));
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    lock_organization(&tx, org_id).await?;
    let Some(user) = tx
        .query_opt(
            "SELECT id, email, name FROM users WHERE lower(email) = lower($1)",
            &[&email],
        )
        .await?
    else {
        return Ok(Err(MembershipError::NoSuchUser));
    };
    let user_id: String = user.get(0);
    let inserted = tx
        .execute(
            "INSERT INTO organization_memberships (id, org_id, user_id, role) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org_id, user_id) DO NOTHING",
            &[&uuid::Uuid::new_v4().to_string(), &org_id, &user_id, &role.as_str()],
        )
        .await?;
    if inserted == 0 {
        return Ok(Err(MembershipError::AlreadyMember));
    }
    tx.commit().await?;
    Ok(Ok(Member {
        user_id,
        email: user.get(1),
        name: user.get(2),
        role,
    }))
}

/// Gives a member another role (`Some`) or removes them from the organization (`None`, which
/// removes their project roles too), if `actor` may: see `domain::account::check_membership_change`.
pub async fn change_member(
    pool: &Pool,
    org_id: &str,
    actor: Role,
    user_id: &str,
    new_role: Option<Role>,
) -> anyhow::Result<Result<(), MembershipError>> {
    if new_role == Some(Role::None) {
        return Ok(Err(MembershipError::Refused(
            MembershipRefusal::NotPermitted,
        )));
    }
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let owners = lock_organization(&tx, org_id).await?;
    let Some(current) = tx
        .query_opt(
            "SELECT role FROM organization_memberships WHERE org_id = $1 AND user_id = $2",
            &[&org_id, &user_id],
        )
        .await?
    else {
        return Ok(Err(MembershipError::NotAMember));
    };
    let current = role_of(current.get(0));
    if let Err(refusal) = check_membership_change(actor, current, new_role, owners) {
        return Ok(Err(MembershipError::Refused(refusal)));
    }
    match new_role {
        Some(role) => {
            tx.execute(
                "UPDATE organization_memberships SET role = $3, updated_at = now()
                  WHERE org_id = $1 AND user_id = $2",
                &[&org_id, &user_id, &role.as_str()],
            )
            .await?;
        }
        None => {
            tx.execute(
                "DELETE FROM organization_memberships WHERE org_id = $1 AND user_id = $2",
                &[&org_id, &user_id],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Gives `user_id` a role of their own on one project (Langfuse's project-level role), replacing
/// any they had; they must be a member of its organization. For provisioning and tests: the
/// settings page manages organization roles.
pub async fn set_project_role(
    pool: &Pool,
    project_id: &str,
    user_id: &str,
    role: Role,
) -> anyhow::Result<bool> {
    let client = pool.get().await?;
    let written = client
        .execute(
            "INSERT INTO project_memberships (org_membership_id, project_id, user_id, role)
             SELECT om.id, p.id, om.user_id, $3
               FROM projects p JOIN organization_memberships om ON om.org_id = p.org_id
              WHERE p.id = $1 AND om.user_id = $2
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()",
            &[&project_id, &user_id, &role.as_str()],
        )
        .await?;
    Ok(written == 1)
}
