use prost::Message;
use tokio::sync::watch;

use super::{QueueError, Result};
use crate::domain::PolicyVersion;
use crate::pb;

pub(crate) fn decode(bytes: &[u8]) -> Result<PolicyVersion> {
    let wire = pb::PolicyVersion::decode(bytes)
        .map_err(|e| QueueError::Corrupt(format!("policy version does not decode: {e}")))?;
    PolicyVersion::try_from(wire)
        .map_err(|e| QueueError::Corrupt(format!("stored policy version is invalid: {e}")))
}

/// Replaces the value in `tx` when `candidate` is newer. Announcements can
/// arrive twice or out of order around reconnections; versions never go back.
pub(crate) fn offer(tx: &watch::Sender<Option<PolicyVersion>>, candidate: PolicyVersion) {
    tx.send_if_modified(|current| {
        let newer = current.as_ref().is_none_or(|v| candidate.number > v.number);
        if newer {
            *current = Some(candidate);
        }
        newer
    });
}

/// Follows the published policy version.
#[derive(Debug, Clone)]
pub struct PolicyWatch {
    rx: watch::Receiver<Option<PolicyVersion>>,
}

impl PolicyWatch {
    pub(crate) fn new(rx: watch::Receiver<Option<PolicyVersion>>) -> Self {
        Self { rx }
    }

    /// The newest version seen, if any was published.
    pub fn current(&self) -> Option<PolicyVersion> {
        self.rx.borrow().clone()
    }

    /// Waits until a version newer than the last one returned is known.
    /// Returns `None` when the watch can no longer be updated.
    pub async fn changed(&mut self) -> Option<PolicyVersion> {
        self.rx.changed().await.ok()?;
        self.rx.borrow_and_update().clone()
    }

    /// Waits until the current version is at least `number`.
    pub async fn wait_for(&mut self, number: u64) -> Option<PolicyVersion> {
        self.rx
            .wait_for(|v| v.as_ref().is_some_and(|v| v.number >= number))
            .await
            .ok()
            .and_then(|v| v.clone())
    }
}
