//! What can go wrong in a store, and what the caller should do about it:
//! retry (the server is away or busy), set the rows aside (they cannot be
//! stored), or stop (anything else).

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse: {0}")]
    ClickHouse(#[from] ::clickhouse::error::Error),
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ClickHouse server version `{0}` is not understood")]
    UnknownServerVersion(String),
    #[error("stored data is malformed: {0}")]
    Malformed(String),
    #[error("storage task failed: {0}")]
    Task(String),
}

/// ClickHouse error codes a retry may cure: the server is busy, short of
/// memory, merging, read-only for a while, or timed out.
const CLICKHOUSE_TRANSIENT_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    394, // QUERY_WAS_CANCELLED
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

/// ClickHouse error codes the rows themselves cause: no retry will store them.
const CLICKHOUSE_ROW_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    130, // CANNOT_READ_ARRAY_FROM_TEXT
    131, // TOO_LARGE_STRING_SIZE
    190, // SIZES_OF_ARRAYS_DOESNT_MATCH
];

/// The `Code: N` of a ClickHouse exception text (old and new formats).
fn clickhouse_code(message: &str) -> Option<u32> {
    let rest = &message[message.find("Code: ")? + "Code: ".len()..];
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len())].parse().ok()
}

impl StoreError {
    /// Worth retrying later: the server is down, busy or timed out. The rows
    /// are held meanwhile.
    pub fn is_transient(&self) -> bool {
        use ::clickhouse::error::Error as Ch;
        match self {
            StoreError::ClickHouse(Ch::Network(_) | Ch::TimedOut) => true,
            // No code: an HTTP error from something in front of the server.
            StoreError::ClickHouse(Ch::BadResponse(message)) => {
                clickhouse_code(message).is_none_or(|code| CLICKHOUSE_TRANSIENT_CODES.contains(&code))
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::SystemIoFailure
            ),
            _ => false,
        }
    }

    /// A column a migration adds is there already: another process opening
    /// the store at the same moment added it (neither ClickHouse 18.16 nor
    /// SQLite has `ADD COLUMN IF NOT EXISTS`).
    pub fn is_column_already_added(&self) -> bool {
        use ::clickhouse::error::Error as Ch;
        match self {
            // DUPLICATE_COLUMN
            StoreError::ClickHouse(Ch::BadResponse(message)) => clickhouse_code(message) == Some(44),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(message))) => {
                message.starts_with("duplicate column name")
            }
            _ => false,
        }
    }

    /// The rows cannot be stored however often they are sent: set them aside
    /// (as dead letters) rather than block the rest.
    pub fn is_caused_by_rows(&self) -> bool {
        use ::clickhouse::error::Error as Ch;
        match self {
            StoreError::Malformed(_) => true,
            StoreError::ClickHouse(Ch::BadResponse(message)) => {
                clickhouse_code(message).is_some_and(|code| CLICKHOUSE_ROW_CODES.contains(&code))
            }
            StoreError::ClickHouse(Ch::Custom(_) | Ch::SequenceMustHaveLength) => true,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.code, rusqlite::ErrorCode::TooBig | rusqlite::ErrorCode::ConstraintViolation)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad_response(text: &str) -> StoreError {
        StoreError::ClickHouse(::clickhouse::error::Error::BadResponse(text.into()))
    }

    #[test]
    fn clickhouse_errors_are_told_apart_by_code_in_both_formats() {
        let old = bad_response("Code: 252, e.displayText() = DB::Exception: Too many parts (300)");
        assert!(old.is_transient() && !old.is_caused_by_rows());
        let new = bad_response("Code: 33. DB::Exception: Cannot read all data. (CANNOT_READ_ALL_DATA)");
        assert!(!new.is_transient() && new.is_caused_by_rows());
        let missing = bad_response("Code: 60. DB::Exception: Table plumbline.process_events does not exist");
        assert!(!missing.is_transient() && !missing.is_caused_by_rows(), "neither: stop and say so");
        assert!(bad_response("502 Bad Gateway").is_transient());
    }
}
