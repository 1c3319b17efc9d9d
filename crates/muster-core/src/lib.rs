//! muster-core: the domain of muster.
//!
//! Owns: task requests, slices and properties ([`task`]), task results and the
//! state machine ([`state`], [`result`]), bots and bot events ([`bot`]),
//! dimensions and matching ([`dims`]), the Swarming task id codec ([`ids`]),
//! request validation ([`validate`]), the error vocabulary ([`error`]) and the
//! [`time::Clock`] trait.
//!
//! Must not: do IO, be async, read the wall clock (except `time::SystemClock`),
//! or know any wire format (JSON field names live in muster-api, SQL in
//! muster-store).

pub mod bot;
pub mod dims;
pub mod drain;
pub mod error;
pub mod ids;
pub mod result;
pub mod state;
pub mod task;
pub mod time;
pub mod validate;
pub mod why;

pub use bot::{BotEvent, BotInfo};
pub use dims::{BotDimensions, DimFilter, TaskDimensions};
pub use drain::{Drain, DrainTarget};
pub use error::{Error, ErrorKind};
pub use ids::TaskId;
pub use result::TaskResult;
pub use state::TaskState;
pub use task::{TaskProperties, TaskRequest, TaskSlice};
pub use time::{Clock, Time};
