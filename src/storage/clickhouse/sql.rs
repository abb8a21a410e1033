//! SQL text built piece by piece with its bound values kept in placeholder order, for queries
//! whose shape depends on the request (the filters of the v2 observation and v3 score lists).

/// A value bound to a `?` placeholder; the client escapes it, nothing is spliced in by hand.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Text(String),
    Texts(Vec<String>),
    Float(f64),
    Floats(Vec<f64>),
    Int(i64),
    Flag(bool),
}

/// SQL text and its bound values, in placeholder order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub binds: Vec<Bound>,
}

impl Sql {
    pub fn text(&mut self, text: &str) {
        self.text.push_str(text);
    }

    pub fn bind(&mut self, value: Bound) {
        self.text.push('?');
        self.binds.push(value);
    }

    pub fn append(&mut self, other: Sql) {
        self.text.push_str(&other.text);
        self.binds.extend(other.binds);
    }

    pub fn query(&self, ch: &clickhouse::Client) -> clickhouse::query::Query {
        debug_assert_eq!(self.text.matches('?').count(), self.binds.len());
        let mut query = ch.query(&self.text);
        for value in &self.binds {
            query = match value {
                Bound::Text(v) => query.bind(v.as_str()),
                Bound::Texts(v) => query.bind(v.as_slice()),
                Bound::Float(v) => query.bind(*v),
                Bound::Floats(v) => query.bind(v.as_slice()),
                Bound::Int(v) => query.bind(*v),
                Bound::Flag(v) => query.bind(*v),
            };
        }
        query
    }
}
