//! The working-day calendar as data (owner: calendar & risks). SCAFFOLD.

use anxin_domain::calendar::WorkCalendar;

use crate::error::Result;
use crate::Conn;

/// The calendar deadlines are computed with: the shipped years plus what administrators added.
/// PROVISIONAL (the owner replaces it): the weekday rule with no exceptions.
pub fn load(_conn: &mut dyn Conn) -> Result<WorkCalendar> {
    Ok(WorkCalendar::default())
}
