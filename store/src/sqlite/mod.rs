//! The single-host store: an embedded SQLite file (rusqlite, bundled), so
//! `plumbline run` needs no server. Same tables and answers as ClickHouse.

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection};

use crate::read::Backend;
use crate::sql::{Sql, SqlArg, SqlDialect};
use crate::tables::row::ViewRow;
use crate::tables::MIGRATIONS;
use crate::{PipelineStats, RowSet, SqliteRow, StoreError, StoreWrite, TableVisitor};

#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the database file and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Task(format!("creating {}: {e}", dir.display())))?;
        }
        let connection = Connection::open(path)?;
        Self::with_connection(connection).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?).await
    }

    async fn with_connection(connection: Connection) -> Result<Self, StoreError> {
        let store = Self { connection: Arc::new(Mutex::new(connection)) };
        store.run(migrate).await?;
        Ok(store)
    }

    /// Runs `work` on the connection off the async threads.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let mut connection =
                connection.lock().map_err(|_| StoreError::Task("SQLite connection poisoned".into()))?;
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 5000;
         CREATE TABLE IF NOT EXISTS schema_migrations (
             id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_wall_ns INTEGER NOT NULL
         );",
    )?;
    let tx = connection.transaction()?;
    for migration in MIGRATIONS {
        let applied: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE id = ?1)", [migration.id], |r| {
                r.get(0)
            })?;
        if applied {
            continue;
        }
        for statement in (migration.sqlite)() {
            match tx.execute_batch(&statement).map_err(StoreError::from) {
                Err(err) if err.is_column_already_added() => {}
                done => done?,
            }
        }
        tx.execute(
            "INSERT INTO schema_migrations (id, name, applied_wall_ns) VALUES (?1, ?2, ?3)",
            params![migration.id, migration.name, crate::now_wall_ns() as i64],
        )?;
        tracing::info!(id = migration.id, name = migration.name, "applied SQLite migration");
    }
    tx.commit()?;
    Ok(())
}

fn write_rows(connection: &mut Connection, rows: &RowSet) -> Result<(), StoreError> {
    let tx = connection.transaction()?;
    rows.visit_tables(&mut Inserts { tx: &tx })?;
    tx.commit()?;
    Ok(())
}

/// INSERT OR IGNORE of a table's rows: the primary key is the
/// de-duplication key, so a re-delivered row changes nothing.
struct Inserts<'t> {
    tx: &'t rusqlite::Transaction<'t>,
}

impl<'a> TableVisitor<'a> for Inserts<'_> {
    type Error = StoreError;

    fn visit<T>(&mut self, table: &'static str, rows: &'a [T]) -> Result<(), StoreError>
    where
        T: SqliteRow + clickhouse::RowOwned + clickhouse::RowWrite + Send + Sync,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let marks: Vec<String> = (1..=T::COLUMNS.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT OR IGNORE INTO {table} ({}) VALUES ({})", T::COLUMNS.join(", "), marks.join(", "));
        let mut insert = self.tx.prepare_cached(&sql)?;
        for row in rows {
            insert.execute(rusqlite::params_from_iter(row.params()))?;
        }
        Ok(())
    }
}

/// Runs a view's SQL, mapping columns to `T` by name.
fn fetch<T: SqliteRow>(connection: &mut Connection, sql: &Sql) -> Result<Vec<T>, StoreError> {
    let mut statement = connection.prepare(&sql.text)?;
    let args = sql.args.iter().map(|arg| match arg {
        SqlArg::Str(v) => rusqlite::types::Value::Text(v.clone()),
        SqlArg::U64(v) => rusqlite::types::Value::Integer(*v as i64),
    });
    let rows = statement.query_map(rusqlite::params_from_iter(args), T::from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn stats(connection: &mut Connection) -> Result<PipelineStats, StoreError> {
    let count = |sql: &str| connection.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n as u64);
    let process_events = count("SELECT count(*) FROM process_events")?;
    let dead_letters = count("SELECT count(*) FROM dead_letters")?;
    let lost_events = count("SELECT coalesce(sum(count), 0) FROM loss_markers")?;
    let mut statement = connection.prepare("SELECT DISTINCT host FROM process_events ORDER BY host LIMIT 10000")?;
    let hosts = statement.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(PipelineStats { process_events, dead_letters, lost_events, hosts })
}

#[async_trait]
impl StoreWrite for SqliteStore {
    async fn write(&self, rows: Arc<RowSet>) -> Result<(), StoreError> {
        self.run(move |c| write_rows(c, &rows)).await
    }
}

#[async_trait]
impl Backend for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite {}", rusqlite::version())
    }

    fn dialect(&self) -> SqlDialect {
        SqlDialect::Sqlite
    }

    async fn fetch<T: ViewRow>(&self, sql: Sql) -> Result<Vec<T>, StoreError> {
        self.run(move |c| fetch(c, &sql)).await
    }

    async fn count_pipeline(&self) -> Result<PipelineStats, StoreError> {
        self.run(stats).await
    }
}
