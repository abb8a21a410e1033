//! The project scope of tenant data.

use std::fmt;

/// The project a request acts for: the scope every query of one project's data takes, so that
/// a query without a project does not compile.
///
/// It is made only where the caller's identity was established: API-key authentication
/// (`http::auth`) and, later, a signed-in session. A handler cannot turn a string from a request
/// into a scope. The architecture test checks that [`ProjectId::authenticated`] is called nowhere
/// else in `src/` (tests make their own).
///
/// The worker role takes no `ProjectId`: its queries are keyed by entity (`storage::queue::
/// EntityRef`, which names its project), read across projects, and are made on behalf of
/// requests that were authenticated when they were accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct ProjectId(String);

impl ProjectId {
    /// The id of a project the caller was authenticated for.
    pub fn authenticated(id: impl Into<String>) -> ProjectId {
        ProjectId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ProjectId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}
