//! What the connected ClickHouse server supports, read from its version, and
//! the DDL fragments that follow from it.
//!
//! The test servers run 18.16 (the newest Debian packages); production runs
//! current releases. Each feature is used only from the release that made it
//! generally available, so one schema definition serves both.

use crate::StoreError;

/// A server's `version()`, major.minor.patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(pub u32, pub u32, pub u32);

impl ServerVersion {
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor)), Some(Ok(patch))) => Ok(Self(major, minor, patch)),
            _ => Err(StoreError::UnknownServerVersion(text.to_string())),
        }
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// The server's features as far as the schema is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `LowCardinality(T)` without the experimental setting (19.3+).
    pub low_cardinality: bool,
    /// Column `CODEC(...)` with Delta/DoubleDelta/ZSTD (19.10+).
    pub codecs: bool,
    /// Table `TTL` (19.6+).
    pub ttl: bool,
}

impl Capabilities {
    pub fn of(version: ServerVersion) -> Self {
        Self {
            low_cardinality: version >= ServerVersion(19, 3, 0),
            codecs: version >= ServerVersion(19, 10, 0),
            ttl: version >= ServerVersion(19, 6, 0),
        }
    }
}

/// Renders DDL for one server. Tables are named without a database: the
/// client names the database on every request.
#[derive(Debug, Clone)]
pub struct Dialect {
    pub capabilities: Capabilities,
    pub retention_days: u32,
}

impl Dialect {
    pub fn low_cardinality(&self, ty: &str) -> String {
        if self.capabilities.low_cardinality {
            format!("LowCardinality({ty})")
        } else {
            ty.to_string()
        }
    }

    /// ` CODEC(codecs)`, or nothing on servers without codecs.
    pub fn codec(&self, codecs: &str) -> String {
        if self.capabilities.codecs {
            format!(" CODEC({codecs})")
        } else {
            String::new()
        }
    }

    /// A table TTL on the `date_column`, or nothing when retention is off or
    /// the server cannot expire rows (then retention is up to the operator).
    pub fn ttl(&self, date_column: &str) -> String {
        if self.capabilities.ttl && self.retention_days > 0 {
            format!("\n        TTL {date_column} + toIntervalDay({})", self.retention_days)
        } else {
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(ServerVersion::parse("18.16.1").unwrap(), ServerVersion(18, 16, 1));
        assert_eq!(ServerVersion::parse("26.9.2.10").unwrap(), ServerVersion(26, 9, 2));
        assert!(ServerVersion::parse("banana").is_err());
        assert!(ServerVersion(19, 10, 0) > ServerVersion(19, 6, 9));
    }

    #[test]
    fn an_old_server_gets_plain_types_and_a_new_one_everything() {
        let old = Capabilities::of(ServerVersion(18, 16, 1));
        assert_eq!(old, Capabilities { low_cardinality: false, codecs: false, ttl: false });
        let new = Capabilities::of(ServerVersion(26, 9, 1));
        assert_eq!(new, Capabilities { low_cardinality: true, codecs: true, ttl: true });

        let d = Dialect { capabilities: new, retention_days: 7 };
        assert_eq!(d.low_cardinality("String"), "LowCardinality(String)");
        assert_eq!(d.codec("ZSTD(3)"), " CODEC(ZSTD(3))");
        assert!(d.ttl("day").contains("TTL day + toIntervalDay(7)"));
        let no_retention = Dialect { retention_days: 0, ..d };
        assert_eq!(no_retention.ttl("day"), "");
    }
}
