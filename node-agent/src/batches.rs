//! Events go into the host's batch, keyed by host, except NCCL calls of a
//! known training job: those go into the job's own batch, keyed
//! `job-<name>`, so that every rank of a job, on whatever host and in
//! whatever communicator, lands on one partition and so one aggregator, which
//! joins its collectives and tells a hang's cause from its consequences. A
//! host with a live rank of a job sends the job's batch at least every
//! [`JOB_HEARTBEAT`], empty if its ranks called nothing: that is how the
//! aggregator knows, in event time, that a rank which called nothing is
//! stuck rather than not heard from yet.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use plumbline_proto::BatchBuilder;

/// A job with a live rank here sends its batch at least this often.
pub const JOB_HEARTBEAT: Duration = Duration::from_secs(1);

/// NCCL calls by training job, one batch each, and when each job's batch
/// last left.
#[derive(Default)]
pub struct JobBatches {
    batches: HashMap<String, BatchBuilder>,
    last_sent: HashMap<String, Instant>,
}

impl JobBatches {
    /// Where an NCCL call of `job` goes: its batch, or `host` when the job
    /// is not known yet (empty).
    pub fn route<'a>(&'a mut self, job: &str, host: &'a mut BatchBuilder) -> &'a mut BatchBuilder {
        if job.is_empty() {
            return host;
        }
        if !self.batches.contains_key(job) {
            self.batches.insert(job.to_string(), BatchBuilder::new());
        }
        self.batches.get_mut(job).expect("inserted above")
    }

    /// The jobs' batches to send now, by job: those holding events, and an
    /// empty one for each `live` job whose heartbeat is due. A job's batch
    /// is made again when it has events or a heartbeat.
    pub fn take(&mut self, live: &[String]) -> Vec<(String, BatchBuilder)> {
        let due: Vec<String> = self.heartbeats_due(live).cloned().collect();
        for job in &due {
            self.batches.entry(job.clone()).or_default();
        }
        let now = Instant::now();
        let mut taken = Vec::new();
        for (job, builder) in self.batches.drain() {
            if !builder.is_empty() || due.contains(&job) {
                self.last_sent.insert(job.clone(), now);
                taken.push((job, builder));
            }
        }
        self.last_sent.retain(|job, _| live.contains(job));
        taken
    }

    /// Of `live` jobs, those whose batch has not left for a heartbeat.
    pub fn heartbeats_due<'a>(&'a self, live: &'a [String]) -> impl Iterator<Item = &'a String> + 'a {
        live.iter().filter(|job| self.last_sent.get(*job).is_none_or(|at| at.elapsed() >= JOB_HEARTBEAT))
    }

    pub fn len(&self) -> usize {
        self.batches.values().map(BatchBuilder::len).sum()
    }

    pub fn approx_bytes(&self) -> usize {
        self.batches.values().map(BatchBuilder::approx_bytes).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.values().all(BatchBuilder::is_empty)
    }
}

/// The Kafka key of a training job's batches.
pub fn job_key(job: &str) -> String {
    format!("job-{job}")
}
