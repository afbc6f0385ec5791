//! What a page's query string may say, shared by every view: host and time
//! range. Times are written as the CLI takes them (`15m`, `2h`, or an RFC
//! 3339 time) and read as the API's wall-clock range.

use plumbline_proto::v1::TimeRange;
use serde::Deserialize;

use crate::cli::parse_time;

/// A query-string field that does not say what it must, named.
#[derive(Debug)]
pub struct BadField(pub String);

/// `?host=…&since=…&until=…`
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Scope {
    pub host: String,
    pub since: String,
    pub until: String,
}

impl Scope {
    /// The range these name, `None` when they name none; a time that does
    /// not parse is the reader's error, with the field named.
    pub fn range(&self) -> Result<Option<TimeRange>, BadField> {
        let at = |field: &str, text: &str| -> Result<u64, BadField> {
            if text.is_empty() {
                return Ok(0);
            }
            parse_time(text).map_err(|e| BadField(format!("{field}: {e}")))
        };
        let (start_ns, end_ns) = (at("since", &self.since)?, at("until", &self.until)?);
        Ok((start_ns != 0 || end_ns != 0).then_some(TimeRange { start_ns, end_ns }))
    }

    /// The query string that keeps this scope on a link to another view.
    pub fn query(&self) -> String {
        let pairs = [("host", &self.host), ("since", &self.since), ("until", &self.until)];
        let kept: Vec<_> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// A number from the query string: empty is `None`, anything else must parse.
pub fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<Option<T>, BadField> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| BadField(format!("{field}: `{text}` is not a number")))
}
