//! Notifications: sending the deliveries that firing policies committed.
//!
//! The [`dispatcher`] takes deliveries as they are committed, and on start every
//! delivery a previous run left pending, and hands each to its channel.

pub mod dispatcher;
pub mod email;
