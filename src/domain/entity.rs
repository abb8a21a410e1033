//! The kinds of record the ingestion pipeline writes. Both roles name them in the queue messages,
//! the raw-event lines and the `entity_events` keys, so their text forms are stored formats.

/// Which kind of record an event writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    Trace,
    Observation,
    Score,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Trace => "trace",
            EntityKind::Observation => "observation",
            EntityKind::Score => "score",
        }
    }
}

impl std::str::FromStr for EntityKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trace" => Ok(EntityKind::Trace),
            "observation" => Ok(EntityKind::Observation),
            "score" => Ok(EntityKind::Score),
            other => Err(format!("unknown entity kind {other:?}")),
        }
    }
}

impl serde::Serialize for EntityKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for EntityKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_stored_text() {
        for kind in [
            EntityKind::Trace,
            EntityKind::Observation,
            EntityKind::Score,
        ] {
            assert_eq!(kind.as_str().parse::<EntityKind>(), Ok(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<EntityKind>(&json).unwrap(), kind);
        }
        assert!("span".parse::<EntityKind>().is_err());
    }
}
