//! The enrolment socket: `plumbline enforce wrap ROLE -- CMD` asks the agent
//! to enrol its own process in ROLE, waits for the answer, then execs CMD,
//! which keeps the enrolment (and passes it to everything it forks).
//!
//! One line each way: `enroll ROLE\n` → `ok POD\n` or `error REASON\n`. The
//! process enrolled is the peer's, as the kernel names it (SO_PEERCRED), not
//! one the peer names. The socket is root's only (mode 0600).

use std::{io, os::unix::fs::PermissionsExt, path::Path};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
};
use tokio_util::sync::CancellationToken;

use super::enforcer::SharedEnforcer;

/// Listens on `path` until `shutdown`; an old socket file there is replaced.
pub fn spawn(path: &Path, enforcer: SharedEnforcer, shutdown: CancellationToken) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tracing::info!(socket = %path.display(), "enrolment socket listening");
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let enforcer = enforcer.clone();
                        tokio::spawn(async move {
                            if let Err(err) = answer(stream, &enforcer).await {
                                tracing::warn!(%err, "an enrolment request failed");
                            }
                        });
                    }
                    Err(err) => tracing::warn!(%err, "accepting on the enrolment socket failed"),
                },
            }
        }
    });
    Ok(())
}

async fn answer(stream: UnixStream, enforcer: &SharedEnforcer) -> io::Result<()> {
    let peer = stream.peer_cred()?.pid();
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    let reply = match (line.trim().split_once(' '), peer) {
        (Some(("enroll", role)), Some(pid)) if pid > 0 => {
            match enforcer.lock().unwrap_or_else(|e| e.into_inner()).enroll_named(pid as u32, role.trim()) {
                Ok(pod) => format!("ok {pod}\n"),
                Err(reason) => format!("error {reason}\n"),
            }
        }
        (Some(("enroll", _)), _) => "error the kernel did not say which process is asking\n".to_string(),
        _ => format!("error unknown request {:?}; expected `enroll ROLE`\n", line.trim()),
    };
    write.write_all(reply.as_bytes()).await
}

/// The client side, for `plumbline enforce wrap`: enrols this process in
/// `role`; returns the pod number, or the agent's reason.
pub fn enroll_self(socket: &Path, role: &str) -> Result<u32, String> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|err| {
        format!("cannot reach the agent at {}: {err} (is it running with a policy?)", socket.display())
    })?;
    stream.write_all(format!("enroll {role}\n").as_bytes()).map_err(|err| err.to_string())?;
    let mut reply = String::new();
    std::io::BufReader::new(&stream).read_line(&mut reply).map_err(|err| err.to_string())?;
    match reply.trim().split_once(' ') {
        Some(("ok", pod)) => pod.parse().map_err(|_| format!("the agent answered {reply:?}")),
        Some(("error", reason)) => Err(reason.to_string()),
        _ => Err(format!("the agent answered {reply:?}")),
    }
}
