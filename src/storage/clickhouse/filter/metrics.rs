//! The filter columns of the Metrics API's views (`storage::clickhouse::metrics`): one column per
//! dimension of the view, its time column and `metadata`, with the SQL the metrics query reads
//! them by. The columns are made from the view's declarations (`domain::metrics`) once per process,
//! so a dimension can always be filtered on, as in Langfuse.
//!
//! The metrics query builds its own FROM clause (it joins what its dimensions, measures and
//! conditions need); these views are only read for their columns.

use super::{Column, Source, Sql, View};
use crate::domain::project::ProjectId;

/// A filter view over `columns` (leaked once: the views live as long as the process).
pub fn view(name: &'static str, columns: Vec<Column>) -> &'static View {
    let columns: &'static [Column] = Box::leak(columns.into_boxed_slice());
    let refs: Vec<&'static Column> = columns.iter().collect();
    Box::leak(Box::new(View {
        name,
        columns: Box::leak(refs.into_boxed_slice()),
        aliases: &[],
        unsupported: &[],
        narrowing: None,
        from: no_from,
    }))
}

/// The metrics query writes its FROM clause itself.
fn no_from(_: &ProjectId, _: Sql, _: &[Source]) -> Sql {
    unreachable!("the metrics views' FROM clause is built by storage::clickhouse::metrics")
}
