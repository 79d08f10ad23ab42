//! The readiness check: can the database still be used?

use super::{Store, StoreError};

impl Store {
    /// Checks that the database file is still where it was opened and that a write
    /// transaction can be begun and rolled back, which is what every save needs (it
    /// fails while another process holds the database's write lock). Runs on the
    /// blocking pool like every store call; the caller bounds the wait.
    pub async fn check(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.checking.lock().await;
        let path = self.inner.path.clone();
        self.run(move |conn, _| {
            if let Some(path) = &path {
                std::fs::metadata(path).map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::StoreSettings;
    use crate::store::{Store, DB_FILE};

    #[tokio::test]
    async fn a_healthy_store_passes_and_a_missing_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreSettings::default())
            .await
            .unwrap();
        store.check().await.unwrap();
        std::fs::remove_file(dir.path().join(DB_FILE)).unwrap();
        let error = store.check().await.unwrap_err();
        assert!(error.to_string().contains(DB_FILE), "{error}");
        Store::open_in_memory(StoreSettings::default())
            .unwrap()
            .check()
            .await
            .unwrap();
    }
}
