//! A real browser for the dashboard tests: Debian's headless `chromium`
//! driven through `chromedriver` (both from `scripts/install-deps.sh test`)
//! with the `fantoccini` WebDriver client, behind a small blocking API.
//!
//! ```ignore
//! let mut browser = Browser::start();
//! browser.open(&format!("{}/fleet", dashboard));      // waits for the page to load
//! browser.wait_for_text("table.hosts", &host);         // polls, bounded by a count
//! assert_eq!(browser.text("h1"), "Fleet health");
//! browser.click("a.session");
//! browser.screenshot("fleet");                        // target/dashboard-screenshots/fleet.png
//! browser.assert_only_local_requests();                // nothing asked of another host
//! ```
//!
//! Every browser gets a fresh profile, a 1400x900 window, and no way off
//! this machine: host names other than 127.0.0.1 do not resolve
//! (`--host-resolver-rules`), and everything not on loopback goes to a
//! proxy that is not there. A page that tried anyway is caught by
//! [`Browser::assert_only_local_requests`], which reads every request the
//! browser made from its network log (and the page's resource timings) and
//! fails naming any that did not go to the page's own origin.
//! Waits poll a fixed number of times; they never assert on elapsed time.

use std::{
    cell::RefCell,
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How many times a wait looks before it fails, and how long it sleeps in
/// between: a bound on work, not a time limit the test asserts.
const POLLS: u32 = 1_200;
const POLL_GAP: Duration = Duration::from_millis(100);

/// A headless chromium, its chromedriver, and the page it is on.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    driver_port: u16,
    session: String,
    /// Every URL the browser requested, read from its network log so far.
    requested: RefCell<Vec<String>>,
    /// The origin (`http://127.0.0.1:PORT`) of the page last opened.
    origin: String,
    dir: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a browser with a fresh profile.
    pub fn start() -> Self {
        let chromium = std::env::var("PLUMBLINE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver =
            std::env::var("PLUMBLINE_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        for binary in [&chromium, &chromedriver] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: run `scripts/install-deps.sh test` (Debian's chromium and chromium-driver)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let driver_port = super::free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={driver_port}"))
            .arg(format!("--log-path={}", dir.path().join("chromedriver.log").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ready = (0..POLLS).any(|_| {
            let up = TcpStream::connect(("127.0.0.1", driver_port)).is_ok();
            if !up {
                std::thread::sleep(POLL_GAP);
            }
            up
        });
        assert!(ready, "chromedriver did not listen on 127.0.0.1:{driver_port}");

        let profile = dir.path().join("profile");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox", // needed as root
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1400,900",
                    format!("--user-data-dir={}", profile.display()),
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-quic",
                    // No name but 127.0.0.1 resolves, and anything not on
                    // loopback is sent to a proxy nobody listens on.
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    "--proxy-server=http://127.0.0.1:9",
                ],
            },
            "goog:loggingPrefs": { "performance": "ALL", "browser": "ALL" },
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities.as_object().unwrap().clone())
                    .connect(&format!("http://127.0.0.1:{driver_port}")),
            )
            .unwrap_or_else(|e| panic!("chromium did not start through chromedriver: {e}"));
        let session = runtime.block_on(client.session_id()).unwrap().expect("a WebDriver session");
        runtime.block_on(client.goto("about:blank")).unwrap();
        let browser = Browser {
            runtime,
            client: Some(client),
            driver,
            driver_port,
            session,
            requested: RefCell::default(),
            origin: String::new(),
            dir,
        };
        // What the browser asked for on its own before any page was opened
        // (Debian's start page) is not a page's doing: read and set aside.
        browser.requested();
        browser.requested.borrow_mut().clear();
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Goes to `url` (absolute, or relative to the page) and waits until it
    /// has loaded.
    pub fn open(&mut self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.wait_until(&format!("{url} to load"), || self.eval("return document.readyState") == "complete");
        self.origin = self.eval("return location.origin").as_str().unwrap_or_default().to_string();
    }

    /// The page's address now.
    pub fn url(&self) -> String {
        self.runtime.block_on(self.client().current_url()).unwrap().to_string()
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub fn eval(&self, script: &str) -> Value {
        self.runtime.block_on(self.client().execute(script, vec![])).unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// The visible text of the first element matching `selector`; fails
    /// when there is none.
    pub fn text(&self, selector: &str) -> String {
        self.try_text(selector).unwrap_or_else(|| panic!("no {selector:?} on {}", self.url()))
    }

    fn try_text(&self, selector: &str) -> Option<String> {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(selector)).await.ok()?;
            element.text().await.ok()
        })
    }

    /// The visible text of every element matching `selector`.
    pub fn texts(&self, selector: &str) -> Vec<String> {
        self.runtime.block_on(async {
            let mut texts = Vec::new();
            for element in self.client().find_all(Locator::Css(selector)).await.unwrap() {
                texts.push(element.text().await.unwrap());
            }
            texts
        })
    }

    /// An attribute of the first element matching `selector`.
    pub fn attr(&self, selector: &str, name: &str) -> Option<String> {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(selector)).await.ok()?;
            element.attr(name).await.unwrap()
        })
    }

    /// Clicks the first element matching `selector`, and waits for the
    /// page it leads to (if any) to load.
    pub fn click(&mut self, selector: &str) {
        self.runtime
            .block_on(async { self.client().find(Locator::Css(selector)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {selector:?} on {}: {e}", self.url()));
        self.wait_until("the page to load", || self.eval("return document.readyState") == "complete");
        self.origin = self.eval("return location.origin").as_str().unwrap_or_default().to_string();
    }

    /// Waits until an element matches `selector`; returns its text.
    pub fn wait_for(&self, selector: &str) -> String {
        let mut found = None;
        self.wait_until(&format!("{selector:?}"), || {
            found = self.try_text(selector);
            found.is_some()
        });
        found.unwrap()
    }

    /// Waits until the first element matching `selector` contains `text`
    /// (re-opening the page between looks when `reload`: server-rendered
    /// pages change only when fetched again).
    pub fn wait_for_text(&self, selector: &str, text: &str, reload: bool) -> String {
        let mut last = None;
        self.wait_until(&format!("{selector:?} to contain {text:?}"), || {
            if reload {
                let _ = self.runtime.block_on(self.client().refresh());
            }
            last = self.try_text(selector);
            last.as_deref().is_some_and(|t| t.contains(text))
        });
        last.unwrap()
    }

    /// Polls `done` up to [`POLLS`] times; fails naming `what` and the page.
    pub fn wait_until(&self, what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..POLLS {
            if done() {
                return;
            }
            std::thread::sleep(POLL_GAP);
        }
        panic!("gave up waiting for {what} on {} after {POLLS} looks", self.url());
    }

    /// Saves the window as `target/dashboard-screenshots/<view>.png`.
    pub fn screenshot(&self, view: &str) -> PathBuf {
        let png = self.runtime.block_on(self.client().screenshot()).unwrap();
        let dir = target_dir().join("dashboard-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{view}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Every URL the browser has requested since it started.
    pub fn requested(&self) -> Vec<String> {
        let log = self.driver_post(&format!("/session/{}/se/log", self.session), &json!({"type": "performance"}));
        let mut requested = self.requested.borrow_mut();
        for entry in log["value"].as_array().into_iter().flatten() {
            let Ok(message) = serde_json::from_str::<Value>(entry["message"].as_str().unwrap_or("{}")) else {
                continue;
            };
            if message["message"]["method"] == "Network.requestWillBeSent" {
                if let Some(url) = message["message"]["params"]["request"]["url"].as_str() {
                    requested.push(url.to_string());
                }
            }
        }
        requested.clone()
    }

    /// Fails if the browser asked anything of an origin other than the
    /// page's (a CDN, a font service), naming what it asked.
    pub fn assert_only_local_requests(&self) {
        let foreign = self.foreign_requests();
        assert!(foreign.is_empty(), "requests that did not go to {}: {foreign:?}", self.origin);
    }

    /// What the browser asked of an origin other than the page's: read from
    /// its network log, which lists requests that failed too, and from the
    /// page's own resource timings.
    pub fn foreign_requests(&self) -> Vec<String> {
        assert!(self.origin.starts_with("http://127.0.0.1:"), "the page is not on 127.0.0.1: {}", self.origin);
        let local = |url: &str| {
            url.starts_with(&format!("{}/", self.origin))
                || url == self.origin
                || ["data:", "blob:", "about:"].iter().any(|s| url.starts_with(s))
        };
        let requested = self.requested();
        assert!(!requested.is_empty(), "the network log shows no request at all: is it on?");
        let timings = self.eval("return performance.getEntriesByType('resource').map(e => e.name)");
        let timed = timings.as_array().unwrap().iter().filter_map(Value::as_str).map(str::to_string);
        let mut foreign: Vec<String> = requested.into_iter().chain(timed).filter(|u| !local(u)).collect();
        foreign.sort();
        foreign.dedup();
        foreign
    }

    /// A chromedriver command the WebDriver client does not have.
    fn driver_post(&self, path: &str, body: &Value) -> Value {
        let body = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.driver_port)).unwrap();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // Read the head, then exactly Content-Length bytes: chromedriver
        // may keep the connection open whatever the request says.
        let mut reader = std::io::BufReader::new(stream);
        let mut length = 0usize;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let json = String::from_utf8_lossy(&body);
        let response = format!("{head}{json}");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("chromedriver {path}: {e}: {response}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- chromedriver log (last lines) ----");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The workspace's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}
