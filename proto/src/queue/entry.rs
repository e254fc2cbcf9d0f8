use bytes::Bytes;
use prost::Message;

use crate::SCHEMA_VERSION;

/// Id of a stream entry, in Redis' `millis-sequence` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub String);

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a stream entry holds: one encoded message and its schema version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub schema_version: u32,
    pub payload: Bytes,
}

impl Entry {
    pub fn encode<M: Message>(message: &M) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            payload: Bytes::from(message.encode_to_vec()),
        }
    }

    /// Decodes the payload, refusing other schema versions.
    pub fn decode<M: Message + Default>(&self) -> Result<M, String> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(format!(
                "schema version {} is not the supported {SCHEMA_VERSION}",
                self.schema_version
            ));
        }
        M::decode(self.payload.clone()).map_err(|e| format!("protobuf decode failed: {e}"))
    }
}

/// An entry handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: EntryId,
    /// `Err` holds why the stored fields do not form an [`Entry`].
    pub entry: Result<Entry, String>,
    /// How many times the entry has been delivered, this time included.
    pub deliveries: u64,
}
