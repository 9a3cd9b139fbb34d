//! Services every capability uses.

pub mod metrics;

use crate::app::App;

/// The background services of a running server.
pub struct Services {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

/// Start the background services (notification delivery, job workers) for `serve`.
pub fn start(_app: &App) -> Services {
    Services {
        handles: Vec::new(),
    }
}

impl Services {
    pub async fn stop(self) {
        for h in self.handles {
            h.abort();
        }
    }
}
