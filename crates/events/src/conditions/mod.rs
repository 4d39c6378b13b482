//! What conditions are judged on, and the judging: game activities pushed by game servers and
//! their storage port ([`activities`]), an operator's fact endpoint as an alternative source
//! ([`external_facts`]), and the checker that evaluates an event's (and a tier's) condition
//! tree on a player's facts ([`eligibility`]). The evaluation itself is pure, in
//! [`crate::domain::evaluate`].

pub mod activities;
pub mod eligibility;
pub mod external_facts;
