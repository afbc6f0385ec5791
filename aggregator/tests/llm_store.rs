//! LLM calls, agent membership and TLS stacks as agents send them: batches
//! through the aggregator's pipeline into both stores, read back through the
//! store's views: tokens summed per hour, mapped and discovered agents, and
//! re-delivery changing nothing. The ClickHouse half needs
//! PLUMBLINE_TEST_CLICKHOUSE (scripts/test.sh starts one).

mod support;

use std::{collections::BTreeMap, sync::Arc};
use support::stores;

use bytes::Bytes;
use plumbline_aggregator::{pipeline::run_pipeline, AggregatorSnapshot, AggregatorStats, PipelineConfig};
use plumbline_proto::{
    v1::{event::Body, AgentProcess, ClockAnchor, LlmCall, LlmToolCall, NodeIdentity, TlsStack},
    BatchBuilder, BatchHeader, Who,
};
use plumbline_store::{ActivityFilter, Store, TimeRange, TokenUsageHourRow};
use plumbline_transport::{channel, BatchSink, OutgoingBatch};
use prost::Message;
use tokio_util::sync::CancellationToken;

const S: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * S;
/// The hour the batches' clocks start in; boot time 0 is 1234 s into it.
const FIRST_HOUR: u64 = 1_795_442_400 * S;
const WALL_AT_BOOT: u64 = FIRST_HOUR + 1234 * S;

/// Events of one host, built into a batch the way the agent builds them.
struct Host {
    builder: BatchBuilder,
    name: &'static str,
}

impl Host {
    fn new(name: &'static str) -> Self {
        Self { builder: BatchBuilder::new(), name }
    }

    fn who(&mut self, pid: u32, comm: &str) -> Who {
        let comm_sid = self.builder.intern(comm);
        Who { pid, tid: pid, cgroup_id: 1, comm_sid, process_start_ns: u64::from(pid) * S }
    }

    fn map(&mut self, at: u64, pid: u32, comm: &str, agent: &str) {
        let who = self.who(pid, comm);
        let b = &mut self.builder;
        let body = AgentProcess {
            agent_sid: b.intern(agent),
            rule_sid: b.intern(if agent.is_empty() { "" } else { "agents-by-command-line" }),
            matched_on_sid: b.intern(if agent.is_empty() { "" } else { "COMMAND_LINE" }),
        };
        b.push_by(at, &who, Body::Agent(body));
    }

    #[allow(clippy::too_many_arguments)]
    fn call(&mut self, at: u64, pid: u32, comm: &str, agent: &str, model: (&str, &str), tokens: (u64, u64, u64)) {
        let who = self.who(pid, comm);
        let b = &mut self.builder;
        let call = LlmCall {
            provider_sid: b.intern(model.0),
            model_sid: b.intern(model.1),
            agent_sid: b.intern(agent),
            endpoint_sid: b.intern("/v1/chat/completions"),
            http_status: 200,
            request_ts_ns: at,
            latency_ns: 800_000_000,
            ttft_ns: 120_000_000,
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            cached_input_tokens: tokens.2,
            streamed: true,
            tool_calls: vec![LlmToolCall {
                id_sid: b.intern("call_1"),
                name_sid: b.intern("run_tests"),
                arguments_sid: b.intern("{}"),
            }],
            connection_id: u64::from(pid) << 8,
            ..Default::default()
        };
        b.push_by(at, &who, Body::LlmCall(call));
    }

    fn tls(&mut self, at: u64, pid: u32, comm: &str, library: &str, path: &str, reason: &str) {
        let who = self.who(pid, comm);
        let b = &mut self.builder;
        let stack = TlsStack {
            library_sid: b.intern(library),
            path_sid: b.intern(path),
            hooked: reason.is_empty(),
            reason_sid: b.intern(reason),
        };
        b.push_by(at, &who, Body::TlsStack(stack));
    }

    fn batch(&mut self) -> OutgoingBatch {
        let events = self.builder.len();
        let batch = self.builder.finish(BatchHeader {
            node: NodeIdentity { host: self.name.into(), boot_id: "boot".into(), ..Default::default() },
            clock: ClockAnchor { boot_ns: 0, wall_ns: WALL_AT_BOOT, uncertainty_ns: 0 },
            ..Default::default()
        });
        OutgoingBatch { key: self.name.into(), payload: Bytes::from(batch.encode_to_vec()), events }
    }
}

/// Runs the aggregator's pipeline over `batches` into `store`.
async fn deliver(store: &Arc<dyn Store>, batches: &[OutgoingBatch]) -> AggregatorSnapshot {
    let (sink, source) = channel::pair(batches.len().max(1));
    for batch in batches {
        sink.send(batch).await.unwrap();
    }
    drop(sink);
    let stats = Arc::new(AggregatorStats::default());
    let config = PipelineConfig { max_batches: 64, linger_ms: 10, ..Default::default() };
    run_pipeline(&source, store.clone(), &config, Arc::clone(&stats), &CancellationToken::new()).await.unwrap();
    stats.snapshot()
}

fn all() -> ActivityFilter {
    ActivityFilter { limit: 10_000, ..Default::default() }
}

const GPT: (&str, &str) = ("openai", "gpt-4o");
const CLAUDE: (&str, &str) = ("anthropic", "claude-sonnet-4");

/// node-1:
/// - python3 (100) is mapped to `coder` and calls twice in the first hour and once in the second;
/// - curl (200) calls without a mapping: discovered;
/// - node (300) is mapped to `reviewer` and makes no call;
/// - bash (400) is mapped, unmapped by a rule change, then calls: discovered;
/// - TLS: python3's OpenSSL hooked, gh's Go TLS not.
fn known_batches() -> Vec<OutgoingBatch> {
    let mut h = Host::new("node-1");
    h.map(10 * S, 100, "python3", "coder");
    h.call(20 * S, 100, "python3", "coder", GPT, (100, 10, 5));
    h.call(30 * S, 100, "python3", "coder", CLAUDE, (1000, 20, 0));
    h.call(2400 * S, 100, "python3", "coder", GPT, (7, 3, 1)); // the second hour
    h.call(40 * S, 200, "curl", "", GPT, (50, 5, 0));
    h.map(50 * S, 300, "node", "reviewer");
    h.map(60 * S, 400, "bash", "coder");
    h.map(70 * S, 400, "bash", "");
    h.call(80 * S, 400, "bash", "", GPT, (1, 1, 0));
    h.tls(5 * S, 100, "python3", "openssl", "/usr/lib/x86_64-linux-gnu/libssl.so.3", "");
    h.tls(6 * S, 500, "gh", "go", "/usr/bin/gh", "stripped Go binary: no crypto/tls symbols");
    vec![h.batch()]
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_summed_per_hour_agent_provider_and_model() {
    for (name, store) in stores("llm").await {
        deliver(&store, &known_batches()).await;
        let usage = store.token_usage(&all()).await.unwrap();
        let row = |hour: u64, agent: &str, model: (&str, &str), calls, tokens: (u64, u64, u64)| TokenUsageHourRow {
            hour_wall_ns: FIRST_HOUR + hour * HOUR,
            agent: agent.into(),
            provider: model.0.into(),
            model: model.1.into(),
            calls,
            input_tokens: tokens.0,
            output_tokens: tokens.1,
            cached_input_tokens: tokens.2,
        };
        assert_eq!(
            usage,
            vec![
                row(1, "coder", GPT, 1, (7, 3, 1)),
                row(0, "", GPT, 2, (51, 6, 0)),
                row(0, "coder", CLAUDE, 1, (1000, 20, 0)),
                row(0, "coder", GPT, 1, (100, 10, 5)),
            ],
            "{name}"
        );
        let claude = ActivityFilter { contains: Some("anthropic".into()), ..all() };
        assert_eq!(store.token_usage(&claude).await.unwrap().len(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mapped_agents_and_discovered_callers_are_told_apart_with_their_calls() {
    for (name, store) in stores("llm").await {
        deliver(&store, &known_batches()).await;
        let agents = store.list_agents(&all()).await.unwrap();
        let summary: Vec<(u32, &str, &str, u64, u64, u64)> = agents
            .iter()
            .map(|a| (a.pid, a.comm.as_str(), a.agent.as_str(), a.llm_calls, a.input_tokens, a.output_tokens))
            .collect();
        assert_eq!(
            summary,
            vec![
                (100, "python3", "coder", 3, 1107, 33),
                (400, "bash", "", 1, 1, 1),
                (300, "node", "reviewer", 0, 0, 0),
                (200, "curl", "", 1, 50, 5),
            ],
            "{name}: newest activity first"
        );
        assert_eq!(
            (agents[0].rule.as_str(), agents[0].matched_on.as_str()),
            ("agents-by-command-line", "COMMAND_LINE")
        );
        assert_eq!(agents[0].first_wall_ns, WALL_AT_BOOT + 10 * S, "{name}: from its mapping");
        assert_eq!(agents[0].last_wall_ns, WALL_AT_BOOT + 2400 * S, "{name}: to its last call");

        // After the mappings: python3 still `coder` (mapped before, calling since), node idle and not listed.
        let later =
            ActivityFilter { range: TimeRange { start_ns: Some(WALL_AT_BOOT + 75 * S), end_ns: None }, ..all() };
        let later: Vec<(u32, String, u64)> =
            store.list_agents(&later).await.unwrap().into_iter().map(|a| (a.pid, a.agent, a.llm_calls)).collect();
        assert_eq!(later, vec![(100, "coder".to_string(), 1), (400, String::new(), 1)], "{name}");

        let by_name = ActivityFilter { contains: Some("review".into()), ..all() };
        assert_eq!(store.list_agents(&by_name).await.unwrap().len(), 1, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_and_tls_stacks_read_back_whole_newest_first() {
    for (name, store) in stores("llm").await {
        deliver(&store, &known_batches()).await;
        let calls = store.list_llm_calls(&all()).await.unwrap();
        let times: Vec<u64> = calls.iter().map(|c| c.wall_ns - WALL_AT_BOOT).collect();
        assert_eq!(times, [2400, 80, 40, 30, 20].map(|t| t * S), "{name}");
        let first = &calls[0];
        assert_eq!((first.pid, first.ttft_ns, first.streamed, first.http_status), (100, 120_000_000, 1, 200), "{name}");
        assert_eq!(first.tool_call_list().unwrap()[0].name, "run_tests", "{name}");
        let claude = ActivityFilter { contains: Some("claude".into()), ..all() };
        assert_eq!(store.list_llm_calls(&claude).await.unwrap().len(), 1, "{name}");

        let stacks = store.list_tls_stacks(&all()).await.unwrap();
        let summary: Vec<(&str, u8, &str)> =
            stacks.iter().map(|s| (s.library.as_str(), s.hooked, s.reason.as_str())).collect();
        assert_eq!(summary, [("go", 0, "stripped Go binary: no crypto/tls symbols"), ("openssl", 1, "")], "{name}");
    }
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

type UsageKey = (u64, String, String, String);

/// Random calls of random processes on two hosts over about five hours, in
/// batches of 50 events, with the per-hour totals they must add up to.
fn generated(seed: u64, count: u64) -> (Vec<OutgoingBatch>, BTreeMap<UsageKey, [u64; 4]>) {
    let mut rng = Rng(seed | 1);
    let models = [GPT, CLAUDE, ("openai", "gpt-4o-mini")];
    let agents = ["coder", "reviewer", ""];
    let mut hosts = [Host::new("gpu-01"), Host::new("gpu-02")];
    let mut batches = Vec::new();
    let mut expected: BTreeMap<UsageKey, [u64; 4]> = BTreeMap::new();
    for i in 0..count {
        let h = rng.below(2) as usize;
        let pid = 1000 + rng.below(20) as u32;
        let agent = agents[(pid % 3) as usize];
        let model = models[rng.below(3) as usize];
        let tokens = (rng.below(10_000), rng.below(3_000), rng.below(500));
        let at = i * 5 * HOUR / count + rng.below(S);
        hosts[h].call(at, pid, "python3", agent, model, tokens);
        let hour = (WALL_AT_BOOT + at) / HOUR * HOUR;
        let sums = expected.entry((hour, agent.into(), model.0.into(), model.1.into())).or_default();
        for (sum, n) in sums.iter_mut().zip([1, tokens.0, tokens.1, tokens.2]) {
            *sum += n;
        }
        if hosts[h].builder.len() == 50 {
            batches.push(hosts[h].batch());
        }
    }
    batches.extend(hosts.iter_mut().filter(|h| !h.builder.is_empty()).map(Host::batch));
    (batches, expected)
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_calls_add_up_per_hour_in_both_stores() {
    let (batches, expected) = generated(77, 2000);
    // Newest hour first, then agent, provider and model.
    let mut expected: Vec<TokenUsageHourRow> = expected
        .into_iter()
        .map(|((hour, agent, provider, model), [calls, input, output, cached])| TokenUsageHourRow {
            hour_wall_ns: hour,
            agent,
            provider,
            model,
            calls,
            input_tokens: input,
            output_tokens: output,
            cached_input_tokens: cached,
        })
        .collect();
    expected.sort_by(|a, b| {
        let names = |r: &TokenUsageHourRow| (r.agent.clone(), r.provider.clone(), r.model.clone());
        b.hour_wall_ns.cmp(&a.hour_wall_ns).then_with(|| names(a).cmp(&names(b)))
    });
    assert!(expected.iter().map(|r| r.hour_wall_ns).collect::<std::collections::BTreeSet<_>>().len() >= 5);
    for (name, store) in stores("llm").await {
        let stats = deliver(&store, &batches).await;
        assert_eq!((stats.events, stats.events_unsupported, stats.dead_letters), (2000, 0, 0), "{name}");
        assert_eq!(store.token_usage(&all()).await.unwrap(), expected, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_delivery_of_the_same_batches_changes_no_answer() {
    let (mut batches, _) = generated(5, 600);
    batches.extend(known_batches());
    for (name, store) in stores("llm").await {
        deliver(&store, &batches).await;
        let answers = |store: Arc<dyn Store>| async move {
            (
                store.list_llm_calls(&all()).await.unwrap(),
                store.list_agents(&all()).await.unwrap(),
                store.token_usage(&all()).await.unwrap(),
                store.list_tls_stacks(&all()).await.unwrap(),
            )
        };
        let once = answers(store.clone()).await;
        assert_eq!(once.0.len(), 605, "{name}: every call once");
        // A crash before the commit: the same batches again.
        deliver(&store, &batches).await;
        assert_eq!(answers(store.clone()).await, once, "{name}");
    }
}
