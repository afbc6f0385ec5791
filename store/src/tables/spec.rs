//! A table described once and rendered as DDL for both backends.

use crate::dialect::Dialect;

#[derive(Debug, Clone, Copy)]
pub enum Col {
    /// A string with few distinct values (host, comm): LowCardinality where
    /// the server has it.
    Label,
    Text,
    /// Long text (prompts, completions): compressed harder where the server
    /// has codecs.
    LongText,
    U8,
    U16,
    U32,
    U64,
    I32,
    I64,
    /// A small integer that names one of a fixed set of values: an `Enum8`
    /// of these `'name' = value` pairs in ClickHouse, the value in SQLite.
    Kind(&'static str),
    /// A list of strings: an array in ClickHouse, a JSON array in SQLite.
    Strings,
    /// Arbitrary bytes: a ClickHouse `String`, a SQLite BLOB.
    Bytes,
}

impl Col {
    fn clickhouse(self, d: &Dialect) -> String {
        match self {
            Col::Label => d.low_cardinality("String"),
            Col::Text | Col::LongText => "String".into(),
            Col::U8 => "UInt8".into(),
            Col::U16 => "UInt16".into(),
            Col::U32 => "UInt32".into(),
            Col::U64 => "UInt64".into(),
            Col::I32 => "Int32".into(),
            Col::I64 => "Int64".into(),
            Col::Kind(values) => format!("Enum8({values})"),
            Col::Strings => "Array(String)".into(),
            Col::Bytes => "String".into(),
        }
    }

    fn sqlite(self) -> &'static str {
        match self {
            Col::Label | Col::Text | Col::LongText | Col::Strings => "TEXT",
            Col::Bytes => "BLOB",
            Col::U8 | Col::U16 | Col::U32 | Col::U64 | Col::I32 | Col::I64 | Col::Kind(_) => "INTEGER",
        }
    }
}

pub struct TableSpec {
    pub name: &'static str,
    /// The row starts with [`WHO_AND_WHEN`] (an activity of a process).
    pub activity: bool,
    /// The wall-clock column whose day partitions the table in ClickHouse
    /// (and, where the server has TTL, expires it); `None`: one partition,
    /// kept until deleted.
    pub day_of: Option<&'static str>,
    /// In the order of the row struct's fields (after [`WHO_AND_WHEN`]).
    pub columns: &'static [(&'static str, Col)],
    /// The de-duplication key: a re-delivered row has the same key.
    pub key: &'static [&'static str],
    /// SQLite orders the key with `ts_ns` first (see [`Self::sqlite_key`]);
    /// `false` for a table read by its leading key columns.
    pub key_time_first: bool,
    /// Extra SQLite indexes (column lists) for the views' filters.
    pub indexes: &'static [&'static str],
    /// Columns later migrations added, after [`Self::columns`] in the row.
    pub added: &'static [Added],
}

/// Columns one migration added to a table that already existed, each with
/// the value rows written before it read as (an SQL literal).
pub struct Added {
    pub migration: u32,
    pub columns: &'static [(&'static str, Col, &'static str)],
}

/// Columns every activity row starts with: who did it, and when.
pub const WHO_AND_WHEN: [(&str, Col); 8] = [
    ("host", Col::Label),
    ("boot_id", Col::Label),
    ("pid", Col::U32),
    ("process_start_key_ns", Col::U64),
    ("comm", Col::Label),
    ("cgroup_id", Col::U64),
    ("ts_ns", Col::U64),
    ("wall_ns", Col::U64),
];

impl TableSpec {
    /// Every column, in row order.
    pub fn all_columns(&self) -> impl Iterator<Item = (&'static str, Col)> + '_ {
        self.columns_at(u32::MAX)
    }

    /// The columns the table has once migration `migration` is applied.
    fn columns_at(&self, migration: u32) -> impl Iterator<Item = (&'static str, Col)> + '_ {
        let who: &[(&str, Col)] = if self.activity { &WHO_AND_WHEN } else { &[] };
        let added = self.added.iter().filter(move |a| a.migration <= migration);
        who.iter().chain(self.columns).copied().chain(added.flat_map(|a| a.columns.iter().map(|&(n, c, _)| (n, c))))
    }

    /// ReplacingMergeTree on the key, partitioned by day of `wall_ns`, with
    /// the server's codecs and TTL when it has them: the table as migration
    /// `migration` creates it (columns later ones add are left to them).
    pub fn clickhouse_ddl(&self, d: &Dialect, migration: u32) -> String {
        let mut columns: Vec<String> = self
            .columns_at(migration)
            .map(|(name, col)| {
                let codec = match (name, col) {
                    ("ts_ns" | "wall_ns" | "start_wall_ns", _) => d.codec("DoubleDelta, ZSTD(1)"),
                    (_, Col::LongText | Col::Strings | Col::Bytes) => d.codec("ZSTD(3)"),
                    _ => String::new(),
                };
                format!("{name} {}{codec}", col.clickhouse(d))
            })
            .collect();
        let mut partition = String::new();
        if let Some(day_of) = self.day_of {
            columns.push(format!("day Date MATERIALIZED toDate(toDateTime(intDiv({day_of}, 1000000000)))"));
            partition = "\nPARTITION BY day".into();
        }
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n    {}\n) ENGINE = ReplacingMergeTree{partition}\nORDER BY ({}){}",
            self.name,
            columns.join(",\n    "),
            self.key.join(", "),
            if self.day_of.is_some() { d.ttl("day") } else { String::new() },
        )
    }

    /// The key in SQLite's order: the event time first, so rows, which arrive
    /// roughly in time order, append at the right edge of the table's B-tree
    /// and most comparisons end at the first column. (Leading with host and
    /// boot id, the same for every row of a host, made each insert a random
    /// descent comparing long equal strings, and SQLite the embedded
    /// road's bottleneck.) Same columns, so the same de-duplication.
    pub fn sqlite_key(&self) -> Vec<&'static str> {
        if !self.key_time_first {
            return self.key.to_vec();
        }
        let time_first = self.key.iter().filter(|c| **c == "ts_ns");
        time_first.chain(self.key.iter().filter(|c| **c != "ts_ns")).copied().collect()
    }

    /// The table as migration `migration` creates it.
    pub fn sqlite_ddl(&self, migration: u32) -> String {
        let columns: Vec<String> =
            self.columns_at(migration).map(|(name, col)| format!("{name} {} NOT NULL", col.sqlite())).collect();
        let mut ddl = format!(
            "CREATE TABLE IF NOT EXISTS {} (\n    {},\n    PRIMARY KEY ({})\n) WITHOUT ROWID;\n",
            self.name,
            columns.join(",\n    "),
            self.sqlite_key().join(", ")
        );
        for (i, index) in self.indexes.iter().enumerate() {
            ddl.push_str(&format!("CREATE INDEX IF NOT EXISTS {}_{i} ON {} ({index});\n", self.name, self.name));
        }
        ddl
    }
}

impl TableSpec {
    /// The ALTER statements of the columns migration `migration` added.
    pub fn clickhouse_added(&self, d: &Dialect, migration: u32) -> Vec<String> {
        self.added_at(migration)
            .map(|(name, col, default)| {
                format!("ALTER TABLE {} ADD COLUMN {name} {} DEFAULT {default}", self.name, col.clickhouse(d))
            })
            .collect()
    }

    pub fn sqlite_added(&self, migration: u32) -> Vec<String> {
        self.added_at(migration)
            .map(|(name, col, default)| {
                format!("ALTER TABLE {} ADD COLUMN {name} {} NOT NULL DEFAULT {default}", self.name, col.sqlite())
            })
            .collect()
    }

    fn added_at(&self, migration: u32) -> impl Iterator<Item = &(&'static str, Col, &'static str)> {
        self.added.iter().filter(move |a| a.migration == migration).flat_map(|a| a.columns.iter())
    }
}
