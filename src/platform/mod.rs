//! Services every capability uses.

pub mod backup;
pub mod channels;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod ratelimit;
pub mod retention;

use crate::app::App;

/// Start the background services of `serve`: the notification dispatcher, the job workers and
/// the scheduler of daily jobs (retention). `stop` lets running jobs finish their step.
pub fn start(app: &App) -> jobs::Background {
    jobs::start(app)
}
