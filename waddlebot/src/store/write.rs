//! One write of a batch: what [`Store::write_batch`] applies and [`Store::write_behind`]
//! gathers.

use super::{Expect, Store, StoreError, check_key};

/// One write of a batch ([`Store::write_batch`], [`Store::write_behind`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Write {
    /// Writes a document, whatever is there.
    Put {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
        /// The value.
        value: serde_json::Value,
    },
    /// Creates a document unless one exists under the key (then does nothing).
    Insert {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
        /// The value.
        value: serde_json::Value,
    },
    /// Sets these top-level fields of a document and keeps the others (a document that is
    /// not a JSON object is replaced); creates the document from them when there is none.
    Merge {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
        /// The fields to set (`null` is stored as `null`).
        fields: serde_json::Map<String, serde_json::Value>,
    },
    /// Deletes a document (nothing if there is none).
    Delete {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
    },
    /// Adds `delta` to a counter (created at 0).
    Increment {
        /// Its namespace.
        namespace: String,
        /// Its key.
        key: String,
        /// What to add.
        delta: i64,
    },
}

impl Write {
    /// [`Write::Put`].
    pub fn put(
        namespace: impl Into<String>,
        key: impl Into<String>,
        value: serde_json::Value,
    ) -> Self {
        Self::Put {
            namespace: namespace.into(),
            key: key.into(),
            value,
        }
    }

    /// [`Write::Insert`].
    pub fn insert(
        namespace: impl Into<String>,
        key: impl Into<String>,
        value: serde_json::Value,
    ) -> Self {
        Self::Insert {
            namespace: namespace.into(),
            key: key.into(),
            value,
        }
    }

    /// [`Write::Merge`].
    pub fn merge(
        namespace: impl Into<String>,
        key: impl Into<String>,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Self {
        Self::Merge {
            namespace: namespace.into(),
            key: key.into(),
            fields,
        }
    }

    /// [`Write::Delete`].
    pub fn delete(namespace: impl Into<String>, key: impl Into<String>) -> Self {
        Self::Delete {
            namespace: namespace.into(),
            key: key.into(),
        }
    }

    /// [`Write::Increment`].
    pub fn increment(namespace: impl Into<String>, key: impl Into<String>, delta: i64) -> Self {
        Self::Increment {
            namespace: namespace.into(),
            key: key.into(),
            delta,
        }
    }

    /// The namespace written.
    pub fn namespace(&self) -> &str {
        match self {
            Self::Put { namespace, .. }
            | Self::Insert { namespace, .. }
            | Self::Merge { namespace, .. }
            | Self::Delete { namespace, .. }
            | Self::Increment { namespace, .. } => namespace,
        }
    }

    /// The key written.
    pub fn key(&self) -> &str {
        match self {
            Self::Put { key, .. }
            | Self::Insert { key, .. }
            | Self::Merge { key, .. }
            | Self::Delete { key, .. }
            | Self::Increment { key, .. } => key,
        }
    }

    /// Whether it writes a counter (else a document).
    pub fn is_counter(&self) -> bool {
        matches!(self, Self::Increment { .. })
    }

    /// Refuses an empty namespace or key, as every store does.
    pub fn check(&self) -> Result<(), StoreError> {
        check_key("namespace", self.namespace())?;
        check_key(
            if self.is_counter() {
                "counter key"
            } else {
                "document key"
            },
            self.key(),
        )
    }

    /// `stored` with a [`Write::Merge`]'s fields set.
    pub fn merged(
        stored: Option<serde_json::Value>,
        fields: &serde_json::Map<String, serde_json::Value>,
    ) -> serde_json::Value {
        let mut object = match stored {
            Some(serde_json::Value::Object(object)) => object,
            _ => serde_json::Map::new(),
        };
        object.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        serde_json::Value::Object(object)
    }

    /// Applies the write with the store's single-record methods (the default
    /// [`Store::write_batch`]).
    pub(crate) async fn apply_to<S: Store + ?Sized>(&self, store: &S) -> Result<(), StoreError> {
        match self {
            Self::Put {
                namespace,
                key,
                value,
            } => {
                store
                    .put_document(namespace, key, value, Expect::Any)
                    .await?;
            }
            Self::Insert {
                namespace,
                key,
                value,
            } => {
                match store
                    .put_document(namespace, key, value, Expect::Absent)
                    .await
                {
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(err) => return Err(err),
                }
            }
            Self::Merge {
                namespace,
                key,
                fields,
            } => loop {
                // Compare-and-set, again when someone else wrote in between.
                let stored = store.get_document(namespace, key).await?;
                let expect = stored
                    .as_ref()
                    .map_or(Expect::Absent, |d| Expect::Version(d.version));
                let value = Self::merged(stored.map(|d| d.value), fields);
                match store.put_document(namespace, key, &value, expect).await {
                    Ok(_) => break,
                    Err(StoreError::Conflict(_)) => continue,
                    Err(err) => return Err(err),
                }
            },
            Self::Delete { namespace, key } => {
                store.delete_document(namespace, key).await?;
            }
            Self::Increment {
                namespace,
                key,
                delta,
            } => {
                store.increment(namespace, key, *delta).await?;
            }
        }
        Ok(())
    }
}
