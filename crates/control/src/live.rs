//! The control plane's values that change without a restart (SIGHUP): the admin token,
//! the chat token and playback secrets, signed playback, the CORS allowlist and the
//! per-IP request limiter. Readers take a snapshot ([`Live::get`]); a reload swaps in a
//! new one whole.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::auth::TokenKeys;
use crate::request_limit::RequestLimiter;
use crate::secrets::Secrets;
use crate::signing::PlaybackSigner;
use crate::{AuthSettings, PlaybackSettings};

/// One consistent set of the reloadable values.
#[derive(Debug)]
pub struct LiveState {
    pub admin_token: String,
    pub tokens: TokenKeys,
    pub playback: PlaybackSigner,
    /// Browser origins granted by CORS and allowed to open room WebSockets.
    pub allowed_origins: Vec<String>,
    /// Per-IP HTTP request rate limit; `None` when turned off.
    pub requests: Option<RequestLimiter>,
}

impl LiveState {
    /// Builds the state from the settings, reading or creating the secrets in
    /// `data_dir`; `requests` is the per-IP request limiter, when there is one.
    pub fn load(
        data_dir: &Path,
        auth: &AuthSettings,
        playback: &PlaybackSettings,
        requests: Option<RequestLimiter>,
    ) -> std::io::Result<(Self, Secrets)> {
        let secrets = Secrets::load_or_create(
            data_dir,
            auth.admin_token.as_deref(),
            auth.token_secret.as_deref(),
        )?;
        let playback = PlaybackSigner::load(playback, data_dir)?;
        let state = Self {
            admin_token: secrets.admin_token.clone(),
            tokens: TokenKeys::new(&secrets.token_secret),
            playback,
            allowed_origins: auth.allowed_origins.clone(),
            requests,
        };
        Ok((state, secrets))
    }
}

/// The current [`LiveState`], swapped whole on reload.
#[derive(Debug)]
pub struct Live(RwLock<Arc<LiveState>>);

impl Live {
    pub fn new(state: LiveState) -> Self {
        Self(RwLock::new(Arc::new(state)))
    }

    pub fn get(&self) -> Arc<LiveState> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn set(&self, state: LiveState) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
    }
}
