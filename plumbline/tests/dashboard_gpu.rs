//! The GPU pages of the dashboard, end to end on the fleet road: the GPU
//! fleet simulator plays a 512-rank job (64 hosts × 8 GPUs, hosts' clocks
//! ±50 ms apart) with a straggler and a hang through Kafka (tansu) to the
//! aggregator's collective join and ClickHouse; the query service serves
//! the pages. Read over HTTP: `/gpu` lists the job with its verdict counts;
//! `/gpu/<job>` outlines the straggler's row in the heatmap (and its hottest
//! cells are that row's), names the hang's missing rank with its host and
//! GPU (and shows its missing arrival in the heatmap); the timeline draws a
//! lane per chosen rank. Then the same in a real browser (headless
//! chromium, `support::browser`), with a screenshot per page under
//! `target/dashboard-screenshots/` and no request leaving the host. Needs
//! PLUMBLINE_TEST_KAFKA and PLUMBLINE_TEST_CLICKHOUSE (scripts/test.sh).

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
};

use plumbline_bench::gpu_fleet::{play_into_kafka, Hang, JobSpec, Schedule, Straggler};
use support::{
    browser::{target_dir, Browser},
    *,
};

const HOSTS: u32 = 64;
const COLLECTIVES: u64 = 40;
const MS: u64 = 1_000_000;
const SKEW: u64 = 50 * MS;
const STRAGGLER: u32 = 170;
const HUNG: u32 = 509;
/// The hung rank's last collective: the next one hangs.
const AFTER_SEQ: u64 = 30;

/// As in `gpu_join.rs`: a rank 10 ms and 4 spreads after the median is a
/// straggler; missing ranks are a hang after 8 s of event time.
const GPU_JOIN: &str = "[pipeline.gpu]\nstraggler_min_ms = 10\nstraggler_spread_factor = 4\nhang_after_ms = 8000\n\
                        hang_check_interval_ms = 500\nclock_skew_max_ms = 100\n";

/// `GET path` from the dashboard at `addr` (`http://host:port`): status and body.
fn get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let hostport = addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(hostport).map_err(|e| format!("connect {hostport}: {e}"))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no status")?;
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_string() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The start tag holding `needle`, e.g. `data-job="x"`.
fn tag_with<'a>(html: &'a str, needle: &str) -> Option<&'a str> {
    let at = html.find(needle)?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    Some(&html[start..=end])
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    Some(tag[at..at + tag[at..].find('"')?].to_string())
}

/// Every start tag of the page whose class attribute is exactly `class`.
fn tags_of_class<'a>(html: &'a str, class: &str) -> Vec<&'a str> {
    let needle = format!("class=\"{class}\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let start = html[..at].rfind('<')?;
            Some(&html[start..=at + html[at..].find('>')?])
        })
        .collect()
}

#[test]
fn the_gpu_pages_show_a_512_rank_job_s_straggler_hang_and_timeline_over_http_and_in_a_browser() {
    let services = FleetServices::start("dashgpu", GPU_JOIN);
    let addr = services.addr.clone();
    let spec = JobSpec {
        clock_skew_ns: SKEW,
        straggler: Some(Straggler { rank: STRAGGLER, late_ns: 30 * MS, fraction: 0.5 }),
        hang: Some(Hang { ranks: vec![HUNG], after_seq: AFTER_SEQ }),
        ..JobSpec::new(&unique("dash-gpu"), HOSTS, COLLECTIVES)
    };
    let schedule = Schedule::new(&spec);
    let late_at = (0..=AFTER_SEQ).filter(|&seq| schedule.late_ns(STRAGGLER, seq, 0) > 0).count() as u64;
    assert!(late_at > 0);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(play_into_kafka(&spec, &kafka_brokers(), &services.topic)).unwrap();
    let job = spec.job.clone();

    // /gpu: the job with its verdict counts, once the join has judged it.
    let row = eventually_showing("the job listed with a hang and its stragglers", || {
        let (status, html) = get(&addr, "/gpu")?;
        let row = tag_with(&html, &format!("data-job=\"{job}\"")).ok_or(format!("{status}: job not listed"))?;
        let count = |name: &str| attr(row, name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        if count("data-hangs") >= 1 && count("data-stragglers") >= late_at {
            Ok(row.to_string())
        } else {
            Err(row.to_string())
        }
    });
    assert_eq!(attr(&row, "data-stragglers"), Some(late_at.to_string()), "{row}");
    assert_eq!((attr(&row, "data-hangs"), attr(&row, "data-mismatches")), (Some("1".into()), Some("0".into())));

    // /gpu/<job>, once every call is stored (verdicts can be stored before
    // the last calls): no cell of the heatmap is without ranks.
    let page = eventually_showing("every rank's arrivals in the heatmap", || {
        let (status, page) = get(&addr, &format!("/gpu/{job}"))?;
        match (status, page.contains("class=\"he\"")) {
            (200, false) => Ok(page),
            _ => Err(format!("{status}, some cells have no rank yet")),
        }
    });
    // The heatmap's highlighted rank is the straggler ...
    let saved = target_dir().join("dashboard-screenshots");
    std::fs::create_dir_all(&saved).unwrap();
    std::fs::write(saved.join("gpu-job.html"), &page).unwrap();
    let svg = tag_with(&page, "class=\"heatmap\"").expect("a heatmap");
    let per_row: u32 = attr(svg, "data-ranks-per-row").unwrap().parse().unwrap();
    assert_eq!((attr(svg, "data-rows"), per_row), (Some("256".into()), 2), "512 ranks in 256 rows: {svg}");
    let outlined: Vec<String> =
        tags_of_class(&page, "straggler-row").iter().filter_map(|t| attr(t, "data-straggler-rank")).collect();
    assert_eq!(outlined, vec![STRAGGLER.to_string()], "the straggler's row, and only it, is outlined");
    let marked = tag_with(&page, "class=\"straggler-mark\"").unwrap();
    assert_eq!(attr(marked, "data-rank"), Some(STRAGGLER.to_string()));
    // ... and the hottest cells are its row's: no host is painted late for its clock.
    let straggler_y = (STRAGGLER / per_row).to_string();
    let hot: Vec<&str> = ["h6", "h7", "h8"].iter().flat_map(|c| tags_of_class(&page, c)).collect();
    assert!(!hot.is_empty(), "the straggler's late cells are dark");
    for cell in &hot {
        assert_eq!(attr(cell, "y"), Some(straggler_y.clone()), "a hot cell off the straggler's row: {cell}");
    }
    // The hang: its missing rank with host and GPU, and its missing arrival.
    let host = spec.host_of_rank(HUNG);
    let device = JobSpec::device_of(HUNG);
    let missing = tag_with(&page, &format!("data-rank=\"{HUNG}\" data-host=")).expect("the missing rank listed");
    assert_eq!(
        (attr(missing, "data-host"), attr(missing, "data-device")),
        (Some(host.clone()), Some(device.to_string()))
    );
    assert!(missing.contains("missing"), "{missing}");
    let hung_y = (HUNG / per_row).to_string();
    assert!(
        tags_of_class(&page, "hm").iter().any(|t| attr(t, "y") == Some(hung_y.clone())),
        "the hung rank's row shows arrivals missing"
    );
    let missing_mark = tag_with(&page, "class=\"missing-mark\"").unwrap();
    assert_eq!(attr(missing_mark, "data-rank"), Some(HUNG.to_string()));
    assert!(page.len() < 500_000, "the job page weighs {} bytes", page.len());

    // The timeline: a lane per chosen rank, on the window the page links to.
    let link = tag_with(&page, "class=\"timeline-link\"").unwrap();
    let href = attr(link, "href").unwrap().replace("&amp;", "&");
    let at = href.split("at=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let chosen = [0, STRAGGLER, HUNG];
    let (status, timeline) = get(&addr, &format!("/gpu/{job}/timeline?ranks=0,{STRAGGLER},{HUNG}&at={at}")).unwrap();
    assert_eq!(status, 200, "{timeline}");
    let lanes = tags_of_class(&timeline, "gpu-lane");
    let ranks: Vec<String> = lanes.iter().filter_map(|l| attr(l, "data-rank")).collect();
    assert_eq!(ranks, chosen.map(|r| r.to_string()), "one lane per chosen rank, in order");
    for lane in &lanes {
        let calls: u64 = attr(lane, "data-calls").unwrap().parse().unwrap();
        assert!(calls > 0, "each rank made calls around the hang: {lane}");
    }
    let (status, default) = get(&addr, &href).unwrap();
    assert_eq!(status, 200);
    let defaults: Vec<String> =
        tags_of_class(&default, "gpu-lane").iter().filter_map(|l| attr(l, "data-rank")).collect();
    for rank in [STRAGGLER, HUNG] {
        assert!(defaults.contains(&rank.to_string()), "the job page's timeline shows rank {rank}: {defaults:?}");
    }

    // In a real browser.
    let mut browser = Browser::start();
    browser.open(&format!("{addr}/gpu"));
    browser.wait_for_text("table.gpu-jobs", &job, false);
    browser.screenshot("gpu-jobs");
    browser.click(&format!("tr[data-job=\"{job}\"] a"));
    browser.wait_for("svg.heatmap");
    assert_eq!(browser.attr("svg.heatmap g.straggler-mark", "data-rank"), Some(STRAGGLER.to_string()));
    assert!(browser.text("svg.heatmap g.straggler-mark").contains(&format!("rank {STRAGGLER}")));
    let hung_row = browser.text(&format!("tr.missing[data-rank=\"{HUNG}\"]"));
    assert!(hung_row.contains(&host) && hung_row.contains("never arrived"), "{hung_row}");
    browser.screenshot("gpu-job");
    browser.click("a.timeline-link");
    browser.wait_for("svg.gpu-lanes");
    assert!(browser.attr(&format!("g.gpu-lane[data-rank=\"{STRAGGLER}\"]"), "data-calls").is_some());
    browser.screenshot("gpu-timeline");
    browser.assert_only_local_requests();
}
