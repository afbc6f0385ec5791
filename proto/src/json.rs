//! Events as JSON, with interned strings resolved and times made absolute:
//! one object per event, for `--output stdout` and for people reading.
//!
//! Resolution is generic: by the schema's rule, every field ending in `_sid`
//! holds a string index and every field ending in `_sids` a list of them, so
//! new event kinds print correctly without code here.

use serde_json::{Map, Value};

use crate::batch_reader::{BatchError, BatchReader};
use crate::v1::EventBatch;

/// One JSON object per event of `batch`.
pub fn batch_events(batch: &EventBatch) -> Result<Vec<Value>, BatchError> {
    let reader = BatchReader::new(batch)?;
    let node = reader.node();
    reader
        .events()
        .map(|event| {
            let event = event?;
            let mut body = serde_json::to_value(event.event.body.as_ref()).unwrap_or(Value::Null);
            resolve_strings(&reader, event.index, &mut body)?;
            let (kind, fields) = match body {
                Value::Object(map) if map.len() == 1 => map.into_iter().next().unwrap(),
                other => ("unknown".to_string(), other),
            };
            let mut object = Map::new();
            object.insert("host".into(), node.host.clone().into());
            object.insert("boot_id".into(), node.boot_id.clone().into());
            object.insert("ts_boot_ns".into(), event.ts_ns.into());
            object.insert("ts_wall_ns".into(), reader.wall_ns(event.ts_ns).into());
            object.insert("pid".into(), event.event.pid.into());
            object.insert("tid".into(), event.event.tid.into());
            object.insert("cgroup_id".into(), event.event.cgroup_id.into());
            object.insert("kind".into(), to_snake_case(&kind).into());
            object.insert("event".into(), fields);
            Ok(Value::Object(object))
        })
        .collect()
}

fn resolve_strings(reader: &BatchReader<'_>, index: usize, value: &mut Value) -> Result<(), BatchError> {
    match value {
        Value::Object(map) => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if let Some(name) = key.strip_suffix("_sids") {
                    let sids: Vec<u32> = serde_json::from_value(map.remove(&key).unwrap()).unwrap_or_default();
                    map.insert(name.to_string(), reader.strs(index, &sids)?.into());
                } else if let Some(name) = key.strip_suffix("_sid") {
                    let sid: u32 = serde_json::from_value(map.remove(&key).unwrap()).unwrap_or_default();
                    map.insert(name.to_string(), reader.str(index, sid)?.into());
                } else {
                    resolve_strings(reader, index, map.get_mut(&key).unwrap())?;
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                resolve_strings(reader, index, item)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `ExecFailed` -> `exec_failed`.
fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{event::Body, ClockAnchor, NodeIdentity, ProcessExec};
    use crate::{BatchBuilder, BatchHeader};

    #[test]
    fn exec_prints_with_resolved_comm_and_argv_and_wall_time() {
        let mut builder = BatchBuilder::new();
        let exec = ProcessExec {
            comm_sid: builder.intern("sh"),
            exe_sid: builder.intern("/bin/sh"),
            argv_sids: vec![builder.intern("sh"), builder.intern("-c"), builder.intern("exit 7")],
            ppid: 1,
            ..Default::default()
        };
        builder.push(50, 10, 10, 0, Body::Exec(exec));
        let batch = builder.finish(BatchHeader {
            node: NodeIdentity { host: "h".into(), boot_id: "b".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: 1000, uncertainty_ns: 0 },
            ..Default::default()
        });
        let events = batch_events(&batch).unwrap();
        assert_eq!(events.len(), 1);
        let e = &events[0];
        assert_eq!(e["kind"], "exec");
        assert_eq!(e["ts_wall_ns"], 1050);
        assert_eq!(e["event"]["comm"], "sh");
        assert_eq!(e["event"]["exe"], "/bin/sh");
        assert_eq!(e["event"]["argv"], serde_json::json!(["sh", "-c", "exit 7"]));
        assert!(e["event"].get("comm_sid").is_none());
    }

    #[test]
    fn snake_case_of_variant_names() {
        assert_eq!(to_snake_case("ExecFailed"), "exec_failed");
        assert_eq!(to_snake_case("LlmCall"), "llm_call");
    }
}
