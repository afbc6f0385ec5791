//! Waiting between attempts at something that may come back: a broker or a
//! store that is down, a topic not created yet. Each wait doubles, up to a
//! ceiling, and gives way to shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Exponential backoff: `first`, then twice as long each time, at most `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { next: first, max }
    }

    /// How long the next wait will be (to say so in a log line).
    pub fn next_delay(&self) -> Duration {
        self.next
    }

    /// Sleeps the next delay and doubles the one after; `false` when
    /// `shutdown` came first.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        let delay = self.advance();
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = shutdown.cancelled() => false,
        }
    }

    /// Sleeps the next delay, with nothing to give way to.
    pub async fn sleep(&mut self) {
        tokio::time::sleep(self.advance()).await;
    }

    fn advance(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_double_up_to_the_ceiling_and_give_way_to_shutdown() {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_millis(700));
        let mut waited = Vec::new();
        for _ in 0..4 {
            waited.push(backoff.next_delay());
            assert!(backoff.wait(&CancellationToken::new()).await);
        }
        assert_eq!(waited, [200, 400, 700, 700].map(Duration::from_millis));

        let shutdown = CancellationToken::new();
        shutdown.cancel();
        assert!(!backoff.wait(&shutdown).await);
    }
}
