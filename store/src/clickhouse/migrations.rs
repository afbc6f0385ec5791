//! Brings a ClickHouse database up to the newest schema, once per migration.

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use super::Dialect;
use crate::tables::MIGRATIONS;
use crate::StoreError;

#[derive(Debug, Row, Serialize, Deserialize)]
struct AppliedMigration {
    id: u32,
    name: String,
    applied_wall_ns: u64,
    server_version: String,
}

/// Applies every migration not yet recorded in `schema_migrations`.
/// Returns the ids applied now.
pub async fn migrate(client: &Client, dialect: &Dialect, server_version: &str) -> Result<Vec<u32>, StoreError> {
    client
        .query(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                id UInt32, name String, applied_wall_ns UInt64, server_version String
            ) ENGINE = ReplacingMergeTree ORDER BY id",
        )
        .execute()
        .await?;
    let applied: Vec<u32> = client.query("SELECT DISTINCT id FROM schema_migrations").fetch_all().await?;
    let mut now_applied = Vec::new();
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.id)) {
        for statement in (migration.clickhouse)(dialect) {
            match client.query(&statement).execute().await.map_err(StoreError::from) {
                Err(err) if err.is_column_already_added() => {}
                done => done?,
            }
        }
        let mut insert = client.insert::<AppliedMigration>("schema_migrations").await?;
        insert
            .write(&AppliedMigration {
                id: migration.id,
                name: migration.name.to_string(),
                applied_wall_ns: crate::now_wall_ns(),
                server_version: server_version.to_string(),
            })
            .await?;
        insert.end().await?;
        tracing::info!(id = migration.id, name = migration.name, "applied ClickHouse migration");
        now_applied.push(migration.id);
    }
    Ok(now_applied)
}
