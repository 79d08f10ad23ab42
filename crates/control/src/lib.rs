//! onair's control plane: what decides and what is kept. The SQLite [`store`] (stream
//! keys, saved moderation, stream titles and last-live times), [`stream_info`] (titles
//! of live streams in memory), chat tokens and the admin bearer check ([`auth`]), the
//! secrets in the data dir ([`secrets`]), signed playback URLs ([`signing`]), who may
//! publish ([`publish_auth`]), the platform's [`webhooks`], per-address request limits
//! ([`request_limit`]) and what a reload swaps whole ([`live`]), with their settings
//! ([`AuthSettings`], [`PlaybackSettings`], [`StoreSettings`],
//! [`webhooks::WebhookSettings`]).
//!
//! How it plugs in: the relay's hub reports publishes and plays to
//! [`webhooks::Webhooks::hub_observer`], the rooms report broadcasts to its room tap and
//! save moderation through the [`store::Store`]'s `ModerationStore`, the recorders report
//! finished files to [`webhooks::Webhooks::recording_observer`]; the edge asks it before
//! it lets anyone publish or play.
//!
//! Deliberately absent: listeners and HTTP routing (`onair-edge`), the media path, and
//! settings reload (the composition root swaps in what changes).

pub mod auth;
pub mod live;
pub mod publish_auth;
pub mod request_limit;
pub mod secrets;
mod settings;
pub mod signing;
pub mod store;
pub mod stream_info;
pub mod webhooks;

pub use settings::{
    AppPlayback, AuthSettings, PlaybackSettings, PublishAuth, StoreSettings, MAX_PLAYBACK_SECRETS,
    MIN_PLAYBACK_SECRET_LEN,
};
