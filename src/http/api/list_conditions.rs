//! The query parameters of the filtered lists (v1 traces and observations, v2 observations) as
//! conditions of the filter language, read one way for every list: a parameter is an exact
//! match, an enumerated value is checked, `environment` matches any of its values, `tags` all of
//! theirs, a `from…`/`to…` pair is a half-open range; and the structured `filter` parameter's
//! conditions replace those the parameters set on the same columns, as Langfuse combines them.

use super::params::{bad, Query};
use crate::http::error::ApiError;
use crate::storage::clickhouse::filter::{self, ArrayOp, Column, Compare, Condition, TextOp, View};

pub struct ListConditions<'q> {
    query: &'q Query,
    view: &'static View,
    from_parameters: Vec<Condition>,
}

impl<'q> ListConditions<'q> {
    pub fn new(query: &'q Query, view: &'static View) -> Self {
        ListConditions {
            query,
            view,
            from_parameters: Vec::new(),
        }
    }

    /// The column equals `key`'s value (an empty value is the empty text: `parentObservationId=`
    /// asks for observations without a parent).
    pub fn equals(&mut self, key: &str, column: &'static Column) -> Result<&mut Self, ApiError> {
        if let Some(value) = self.query.text(key)? {
            self.push(Condition::Text {
                column,
                op: TextOp::Equals,
                value,
            });
        }
        Ok(self)
    }

    /// The column equals `key`'s value, which must be one of `allowed`.
    pub fn equals_one_of(
        &mut self,
        key: &str,
        column: &'static Column,
        allowed: &[&str],
    ) -> Result<&mut Self, ApiError> {
        if let Some(value) = self.query.single(key)? {
            if !allowed.contains(&value) {
                return Err(bad(format!(
                    "{key} {value:?} is not one of {}",
                    allowed.join(", ")
                )));
            }
            let value = value.to_string();
            self.push(Condition::Text {
                column,
                op: TextOp::Equals,
                value,
            });
        }
        Ok(self)
    }

    /// The column is any of the values of the array parameter `key`.
    pub fn any_of(&mut self, key: &str, column: &'static Column) -> &mut Self {
        self.any_of_values(self.query.values(key), column)
    }

    /// The column is any of `values` (nothing when there are none).
    pub fn any_of_values(&mut self, values: Vec<String>, column: &'static Column) -> &mut Self {
        if !values.is_empty() {
            self.push(Condition::OneOf {
                column,
                negated: false,
                values,
            });
        }
        self
    }

    /// The list column holds all the values of the array parameter `key`.
    pub fn all_of(&mut self, key: &str, column: &'static Column) -> &mut Self {
        let values = self.query.values(key);
        if !values.is_empty() {
            self.push(Condition::Array {
                column,
                op: ArrayOp::AllOf,
                values,
            });
        }
        self
    }

    /// The time column is at or after `from_key` and before `to_key`.
    pub fn time_range(
        &mut self,
        from_key: &str,
        to_key: &str,
        column: &'static Column,
    ) -> Result<&mut Self, ApiError> {
        for (key, compare) in [(from_key, Compare::Gte), (to_key, Compare::Lt)] {
            if let Some(at) = self.query.time(key)? {
                self.push(Condition::Time {
                    column,
                    compare,
                    at,
                });
            }
        }
        Ok(self)
    }

    /// A condition the list reads its own way.
    pub fn push(&mut self, condition: Condition) -> &mut Self {
        self.from_parameters.push(condition);
        self
    }

    /// Every condition: those of the `filter` parameter, and those of the other parameters on
    /// the columns it leaves alone.
    pub fn finish(self) -> Result<Vec<Condition>, ApiError> {
        let from_filter = match self.query.single("filter")? {
            None => Vec::new(),
            Some(text) => filter::parse(self.view, text).map_err(ApiError::BadRequest)?,
        };
        Ok(filter::combine(from_filter, self.from_parameters))
    }
}
