//! One definition per table row, for both backends: the struct (a ClickHouse
//! `Row`, by position) and its SQLite mapping (by column name), generated
//! from the same field list so they cannot drift apart.

use rusqlite::types::{ToSqlOutput, Type, Value, ValueRef};

/// Maps a row type to and from SQLite, column by column, by field name.
pub trait SqliteRow: Sized {
    /// Column names, in field order (also the ClickHouse column order).
    const COLUMNS: &'static [&'static str];

    fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;

    /// The row's values, in column order.
    fn params(&self) -> Vec<ToSqlOutput<'_>>;
}

/// How one field's type is stored in SQLite. Unsigned 64-bit values (hashes,
/// ids) are stored bit for bit in SQLite's signed integers; lists of strings
/// as JSON arrays; bytes as BLOBs.
pub trait SqliteValue: Sized {
    fn to_sqlite(&self) -> ToSqlOutput<'_>;

    fn from_sqlite(row: &rusqlite::Row<'_>, column: &str) -> rusqlite::Result<Self>;
}

macro_rules! sqlite_integer {
    ($($ty:ty),*) => {$(
        impl SqliteValue for $ty {
            fn to_sqlite(&self) -> ToSqlOutput<'_> {
                ToSqlOutput::Owned(Value::Integer(i64::from(*self)))
            }

            fn from_sqlite(row: &rusqlite::Row<'_>, column: &str) -> rusqlite::Result<Self> {
                row.get(column)
            }
        }
    )*};
}

sqlite_integer!(bool, u8, u16, u32, i32, i64);

impl SqliteValue for u64 {
    fn to_sqlite(&self) -> ToSqlOutput<'_> {
        ToSqlOutput::Owned(Value::Integer(*self as i64))
    }

    fn from_sqlite(row: &rusqlite::Row<'_>, column: &str) -> rusqlite::Result<Self> {
        row.get::<_, i64>(column).map(|v| v as u64)
    }
}

impl SqliteValue for String {
    fn to_sqlite(&self) -> ToSqlOutput<'_> {
        ToSqlOutput::Borrowed(ValueRef::Text(self.as_bytes()))
    }

    fn from_sqlite(row: &rusqlite::Row<'_>, column: &str) -> rusqlite::Result<Self> {
        row.get(column)
    }
}

impl SqliteValue for Vec<u8> {
    fn to_sqlite(&self) -> ToSqlOutput<'_> {
        ToSqlOutput::Borrowed(ValueRef::Blob(self))
    }

    fn from_sqlite(row: &rusqlite::Row<'_>, column: &str) -> rusqlite::Result<Self> {
        row.get(column)
    }
}

impl SqliteValue for Vec<String> {
    fn to_sqlite(&self) -> ToSqlOutput<'_> {
        let json = serde_json::to_string(self).expect("a list of strings is JSON");
        ToSqlOutput::Owned(Value::Text(json))
    }

    fn from_sqlite(row: &rusqlite::Row<'_>, column: &str) -> rusqlite::Result<Self> {
        let json: String = row.get(column)?;
        serde_json::from_str(&json).map_err(|err| {
            let index = row.as_ref().column_index(column).unwrap_or_default();
            rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(err))
        })
    }
}

/// Declares a row struct with its ClickHouse and SQLite mappings. Field types
/// are those [`SqliteValue`] knows.
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
                use $crate::tables::row::SqliteValue;
                Ok(Self { $( $field: <$ty>::from_sqlite(row, stringify!($field))? ),* })
            }

            fn params(&self) -> Vec<::rusqlite::types::ToSqlOutput<'_>> {
                use $crate::tables::row::SqliteValue;
                vec![$( self.$field.to_sqlite() ),*]
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
