//! Hazard inspection, the graded hazard ledger, the working-day calendar, the risk register and
//! supervision (issue 6).
//!
//! Modules: `calendar` (holidays and adjusted working weekends as data; [`calendar::load`] gives
//! the [`anxin_domain::calendar::WorkCalendar`] deadlines are computed with), `inspections`
//! (checklist templates, the shipped ones, schedules, today's to-do list, carrying out an
//! inspection; a failed item reports a hazard through [`ledger::report`]), `attachments` (photos
//! and evidence, shared by every capability), `ledger` (隐患台账: hazards, their state machine and
//! deadlines, the plan-start link, acceptance, escalation of overdue hazards, the XLSX shape),
//! `risks` (the 5×5 risk register and its reviews), `supervision` (红黄牌: scoring each community
//! on the ledger per quarter, cards and their reasons).

pub mod attachments;
pub mod calendar;
pub mod inspections;
pub mod ledger;
pub mod risks;
pub mod supervision;
