//! Prints each event of each batch as one JSON line, for a quick look at what
//! the agent captures (`plumbline agent run --output stdout`).

use std::io::Write;

use async_trait::async_trait;
use plumbline_proto::{json, v1::EventBatch};
use prost::Message;

use crate::{BatchSink, OutgoingBatch, SinkError};

#[derive(Debug, Default)]
pub struct StdoutSink;

#[async_trait]
impl BatchSink for StdoutSink {
    async fn send(&self, batch: &OutgoingBatch) -> Result<(), SinkError> {
        let fatal = |message: String| SinkError::Fatal { sink: "stdout", message };
        let decoded = EventBatch::decode(batch.payload.as_ref()).map_err(|e| fatal(e.to_string()))?;
        let events = json::batch_events(&decoded).map_err(|e| fatal(e.to_string()))?;
        let mut out = std::io::stdout().lock();
        for event in events {
            serde_json::to_writer(&mut out, &event).map_err(|e| fatal(e.to_string()))?;
            out.write_all(b"\n").map_err(|e| fatal(e.to_string()))?;
        }
        out.flush().map_err(|e| fatal(e.to_string()))
    }

    fn name(&self) -> &'static str {
        "stdout"
    }
}
