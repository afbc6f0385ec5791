//! One definition per table row, for both backends: the struct (a ClickHouse
//! `Row`, by position) and its SQLite mapping (by column name), generated
//! from the same field list so they cannot drift apart.

/// Maps a row type to and from SQLite, column by column, by field name.
pub trait SqliteRow: Sized {
    /// Column names, in field order (also the ClickHouse column order).
    const COLUMNS: &'static [&'static str];

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;

    fn params(&self) -> Vec<&dyn rusqlite::ToSql>;
}

/// Declares a row struct with its ClickHouse and SQLite mappings. Field types
/// must be plain scalars or `String` (both stores take them as they are).
macro_rules! table_row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$field_meta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, ::clickhouse::Row, ::serde::Serialize, ::serde::Deserialize)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty ),*
        }

        impl $crate::tables::row::SqliteRow for $name {
            const COLUMNS: &'static [&'static str] = &[$(stringify!($field)),*];

            fn from_row(row: &::rusqlite::Row<'_>) -> ::rusqlite::Result<Self> {
                Ok(Self { $( $field: row.get(stringify!($field))? ),* })
            }

            fn params(&self) -> Vec<&dyn ::rusqlite::ToSql> {
                vec![$( &self.$field ),*]
            }
        }
    };
}

/// A [`table_row!`] of an activity table: the row starts with the process
/// and time columns of [`WHO_AND_WHEN`](super::spec::WHO_AND_WHEN), added
/// here so that no table spells them again.
macro_rules! activity_row {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($fields:tt)* }
    ) => {
        $crate::tables::row::table_row! {
            $(#[$meta])*
            pub struct $name {
                pub host: String,
                pub boot_id: String,
                pub pid: u32,
                /// The process's start time, truncated to the identity tick.
                pub process_start_key_ns: u64,
                pub comm: String,
                pub cgroup_id: u64,
                /// Boot-clock time of the event.
                pub ts_ns: u64,
                pub wall_ns: u64,
                $($fields)*
            }
        }
    };
}

pub(crate) use {activity_row, table_row};

/// A row both backends read a view into: SQLite by column name, ClickHouse
/// by position.
pub trait ViewRow: SqliteRow + ::clickhouse::RowOwned + ::clickhouse::RowRead + Send + 'static {}

impl<T: SqliteRow + ::clickhouse::RowOwned + ::clickhouse::RowRead + Send + 'static> ViewRow for T {}
