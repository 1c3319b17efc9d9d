//! Upstream LUCI Scheduler project configs (`luci-scheduler/<project>.cfg`).

use super::{Parsed, Problem};
use crate::manager::Managers;

/// Parses one project config.
pub fn parse(file: &str, _src: &str, _project: &str, _managers: &Managers) -> Result<Vec<Parsed>, Problem> {
    Err(Problem {
        file: file.to_string(),
        line: 1,
        col: 1,
        message: "LUCI Scheduler project configs are not supported yet".into(),
    })
}
