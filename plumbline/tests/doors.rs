//! The query service's doors, locked: a `plumbline run` listening on an
//! address of this host other than loopback, with a token, answers `plumb`
//! and the dashboard only to whoever brings the token (a bearer header, or
//! the cookie the login form sets), and with certificate files serves all of
//! it over TLS. Without a token it refuses to listen there at all. Needs
//! root (the agent, and an address added to `lo` when the host has no
//! other).

mod support;

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use support::*;

const TOKEN: &str = "doors-test-7f3a9c1e5b2d4a6f8e0c";
const WANTS_A_TOKEN: &str = "the query service wants a token: set PLUMB_TOKEN or --token-file";

/// An IPv4 address of this host that is not loopback: the first global one,
/// or one added to `lo` for the test (and removed after). An address outside
/// 127/8 on `lo` is as much this host's, and as little loopback, as one on a
/// network card, and needs no kernel module (this kernel has no `dummy`).
struct HostAddress {
    ip: String,
    added: bool,
}

impl HostAddress {
    /// `tag` keeps the addresses of tests running at once apart.
    fn find(tag: u8) -> Self {
        let output = Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        let found = text.split_whitespace().skip_while(|w| *w != "inet").nth(1).and_then(|a| a.split('/').next());
        if let Some(ip) = found {
            return HostAddress { ip: ip.to_string(), added: false };
        }
        // 198.18.0.0/15 is set aside for tests (RFC 2544): nothing real lives there.
        let ip = format!("198.18.{tag}.1");
        let status = Command::new("ip").args(["addr", "add", &format!("{ip}/32"), "dev", "lo"]).status().unwrap();
        assert!(status.success(), "adding {ip} to lo");
        HostAddress { ip, added: true }
    }
}

impl Drop for HostAddress {
    fn drop(&mut self) {
        if self.added {
            let _ = Command::new("ip").args(["addr", "del", &format!("{}/32", self.ip), "dev", "lo"]).status();
        }
    }
}

/// Writes `text` to `dir/name` with `mode`.
fn secret_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// `plumbline run`'s configuration listening on `listen`, with `extra`.
fn run_config(dir: &Path, host: &str, listen: &str, extra: &str) -> PathBuf {
    let config = dir.join("plumbline.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{listen}\"\n[node]\nhost = \"{host}\"\n[sqlite]\npath = \"{}\"\n[metrics]\nlisten = \"\"\n{extra}",
            dir.join("plumbline.db").display()
        ),
    )
    .unwrap();
    config
}

/// `plumb --addr <addr> <args>` with exactly the token and CA settings
/// given in `env` (none inherited from the test's environment).
fn plumb_with(addr: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plumb"));
    for var in ["PLUMB_TOKEN", "PLUMB_TOKEN_FILE", "PLUMB_CA_FILE", "PLUMB_ADDR"] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied()).arg("--addr").arg(addr).args(args).output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An HTTP answer as curl saw it.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// `curl <args> <url>` (no redirects followed); `None` when curl could not
/// get an answer at all.
fn curl(url: &str, args: &[&str]) -> Option<Answer> {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let output = Command::new("curl")
        .args(["-sS", "--max-redirs", "0", "-D"])
        .arg(&headers)
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    if !output.status.success() {
        return None;
    }
    let headers = std::fs::read_to_string(&headers).unwrap();
    let status = headers.split_whitespace().nth(1)?.parse().ok()?;
    Some(Answer { status, headers, body: String::from_utf8_lossy(&output.stdout).into_owned() })
}

/// Waits until `plumb` with the token lists this test process: the agent
/// saw it, and its answer came through the locked door.
fn wait_until_visible_through_the_door(addr: &str, env: &[(&str, &str)], host: &str) {
    let me = std::process::id();
    eventually_showing("this test process to be listed through the locked door", || {
        let output = plumb_with(addr, env, &["ps", "--host", host, "--limit", "10000", "-o", "json"]);
        if !output.status.success() {
            return Err(stderr(&output));
        }
        let rows: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
        let listed = rows.as_array().is_some_and(|rows| rows.iter().any(|p| p["pid"] == me));
        listed
            .then_some(())
            .ok_or_else(|| format!("{} processes listed, not this one", rows.as_array().map_or(0, Vec::len)))
    });
}

#[test]
fn beyond_loopback_plumb_and_the_dashboard_answer_only_with_the_token() {
    let address = HostAddress::find(1);
    let dir = tempfile::tempdir().unwrap();
    let token_file = secret_file(dir.path(), "query.token", &format!("{TOKEN}\n"), 0o600);
    let host = unique("doors-host");
    let listen = format!("{}:{}", address.ip, free_port());
    let extra = format!("[access]\ntoken_file = \"{}\"\n", token_file.display());
    let config = run_config(dir.path(), &host, &listen, &extra);
    let _run = Component::start("plumbline-run", dir.path(), &["run", "--config", config.to_str().unwrap()]);
    let addr = format!("http://{listen}");
    wait_until_visible_through_the_door(&addr, &[("PLUMB_TOKEN", TOKEN)], &host);

    // plumb: refused without the token, saying what to do; answered with it.
    let refused = plumb_with(&addr, &[], &["stats"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains(WANTS_A_TOKEN), "{}", stderr(&refused));
    let wrong = plumb_with(&addr, &[("PLUMB_TOKEN", "not-the-token")], &["stats"]);
    assert!(!wrong.status.success() && stderr(&wrong).contains("not this query service's"), "{}", stderr(&wrong));
    for env in [[("PLUMB_TOKEN", TOKEN)], [("PLUMB_TOKEN_FILE", token_file.to_str().unwrap())]] {
        let answered = plumb_with(&addr, &env, &["stats", "-o", "json"]);
        assert!(answered.status.success(), "{env:?}: {}", stderr(&answered));
        let stats: serde_json::Value = serde_json::from_slice(&answered.stdout).unwrap();
        assert!(stats["store"].as_str().unwrap().starts_with("sqlite"), "{stats}");
    }

    // The dashboard: a browser without the token is sent to the login form,
    // which it may load with its stylesheet.
    let url = |path: &str| format!("{addr}{path}");
    let away = curl(&url("/fleet?since=1h"), &[]).unwrap();
    assert_eq!(away.status, 303, "{}", away.headers);
    assert_eq!(away.header("location"), Some("/login?next=%2Ffleet%3Fsince%3D1h"));
    let form = curl(&url("/login?next=%2Ffleet%3Fsince%3D1h"), &[]).unwrap();
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"name="token""#) && form.body.contains(r#"value="/fleet?since=1h""#), "{}", form.body);
    assert_eq!(curl(&url("/assets/plumbline.css"), &[]).unwrap().status, 200);

    // The bearer header opens it, as for gRPC.
    let bearer = format!("authorization: Bearer {TOKEN}");
    let page = curl(&url("/fleet"), &["-H", &bearer]).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Fleet health"), "{}", page.body);

    // The login form: a wrong token gets the form again, the right one a
    // cookie and the way back to the page asked for; the cookie opens it.
    let post = |token: &str| {
        curl(
            &url("/login"),
            &["--data-urlencode", &format!("token={token}"), "--data-urlencode", "next=/fleet?since=1h"],
        )
        .unwrap()
    };
    let refused = post("guess");
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("not this service's token") && refused.body.contains(r#"name="token""#));
    assert!(refused.header("set-cookie").is_none());
    let admitted = post(TOKEN);
    assert_eq!(admitted.status, 303, "{}", admitted.headers);
    assert_eq!(admitted.header("location"), Some("/fleet?since=1h"));
    let cookie = admitted.header("set-cookie").unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "no TLS here, so a Secure cookie would never come back: {cookie}");
    assert!(!cookie.contains(TOKEN), "the cookie holds a session derived from the token: {cookie}");
    let session = cookie.split(';').next().unwrap();
    let page = curl(&url("/fleet?since=1h"), &["-H", &format!("cookie: {session}")]).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Fleet health"), "{}", page.body);
}

#[test]
fn beyond_loopback_without_a_usable_token_plumbline_refuses_to_start_naming_the_key() {
    let address = HostAddress::find(2);
    let dir = tempfile::tempdir().unwrap();
    let host = unique("doors-host");
    let listen = format!("{}:{}", address.ip, free_port());
    let start = |extra: &str| {
        let config = run_config(dir.path(), &host, &listen, extra);
        Command::new(env!("CARGO_BIN_EXE_plumbline")).args(["run", "--config"]).arg(&config).output().unwrap()
    };

    let open = start("");
    assert!(!open.status.success());
    let said = stderr(&open);
    assert!(said.contains("access.token_file") && said.contains("not a loopback address"), "{said}");

    let readable = secret_file(dir.path(), "open.token", TOKEN, 0o644);
    let shared = start(&format!("[access]\ntoken_file = \"{}\"\n", readable.display()));
    assert!(!shared.status.success());
    let said = stderr(&shared);
    assert!(said.contains("access.token_file") && said.contains("readable by every user"), "{said}");

    let empty = secret_file(dir.path(), "empty.token", "\n", 0o600);
    let blank = start(&format!("[access]\ntoken_file = \"{}\"\n", empty.display()));
    assert!(!blank.status.success());
    let said = stderr(&blank);
    assert!(said.contains("access.token_file") && said.contains("is empty"), "{said}");

    // The fleet's query service says the same.
    let query = dir.path().join("query.toml");
    std::fs::write(&query, format!("listen = \"{listen}\"\n[metrics]\nlisten = \"\"\n")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_plumbline")).args(["query", "run", "--config"]).arg(&query).output();
    let said = stderr(&output.unwrap());
    assert!(said.contains("access.token_file"), "{said}");
}

/// A CA and a certificate it signed for `ip`, made with openssl:
/// (CA certificate, server certificate, server key).
fn certificates(dir: &Path, ip: &str) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &str| {
        let output = Command::new("openssl").args(args.split(' ')).current_dir(dir).output().unwrap();
        assert!(output.status.success(), "openssl {args}: {}", stderr(&output));
    };
    openssl("req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=plumbline-doors-test-ca");
    openssl("req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=plumbline-doors-test");
    std::fs::write(
        dir.join("server.ext"),
        format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext",
    );
    std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

#[test]
fn with_certificate_files_the_same_doors_serve_tls_only() {
    let address = HostAddress::find(3);
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path(), &address.ip);
    let token_file = secret_file(dir.path(), "query.token", TOKEN, 0o600);
    let host = unique("doors-host");
    let listen = format!("{}:{}", address.ip, free_port());
    let extra = format!(
        "[access]\ntoken_file = \"{}\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        token_file.display(),
        cert.display(),
        key.display()
    );
    let config = run_config(dir.path(), &host, &listen, &extra);
    let run = Component::start("plumbline-run", dir.path(), &["run", "--config", config.to_str().unwrap()]);
    let https = format!("https://{listen}");
    let ca = ca.to_str().unwrap();
    wait_until_visible_through_the_door(&https, &[("PLUMB_TOKEN", TOKEN), ("PLUMB_CA_FILE", ca)], &host);
    assert!(run.log().contains(&format!("https://{listen}/")), "the log gives the dashboard's https URL");

    let answered = plumb_with(&https, &[("PLUMB_TOKEN", TOKEN)], &["--ca-file", ca, "stats"]);
    assert!(answered.status.success(), "{}", stderr(&answered));
    let refused = plumb_with(&https, &[("PLUMB_CA_FILE", ca)], &["stats"]);
    assert!(stderr(&refused).contains(WANTS_A_TOKEN), "the token is asked for over TLS too: {}", stderr(&refused));
    let plain = plumb_with(&format!("http://{listen}"), &[("PLUMB_TOKEN", TOKEN)], &["stats"]);
    assert!(!plain.status.success(), "plain gRPC is not answered on a TLS address");
    let untrusted = plumb_with(&https, &[("PLUMB_TOKEN", TOKEN)], &["stats"]);
    assert!(!untrusted.status.success(), "a certificate the system's CAs did not sign is not trusted");

    let bearer = format!("authorization: Bearer {TOKEN}");
    let page = curl(&format!("{https}/fleet"), &["--cacert", ca, "-H", &bearer]).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Fleet health"), "{}", page.body);
    assert!(curl(&format!("http://{listen}/fleet"), &["-H", &bearer]).is_none(), "plain HTTP gets no page");
    let admitted = curl(
        &format!("{https}/login"),
        &["--cacert", ca, "--data-urlencode", &format!("token={TOKEN}"), "--data-urlencode", "next=/fleet"],
    )
    .unwrap();
    assert_eq!(admitted.status, 303, "{}", admitted.headers);
    let cookie = admitted.header("set-cookie").unwrap();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
}
