//! A shared cache of loaded treatments.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::spec::{TreatmentSource, TreatmentSpec};
use super::{Treatment, TreatmentError, load};

/// Loaded treatments, shared by every call: each file is decoded once and played from memory.
///
/// Thread-safe; loading happens outside the lock, so a slow file never blocks lookups of
/// treatments already loaded. Call it from a blocking context (`spawn_blocking`), since the
/// first load of a file reads it.
#[derive(Debug)]
pub struct TreatmentCache {
    root: PathBuf,
    loaded: Mutex<HashMap<PathBuf, Arc<Treatment>>>,
}

impl TreatmentCache {
    /// A cache resolving names under `root` (the configured treatments folder).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TreatmentCache {
            root: root.into(),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The treatments folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn map(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<Treatment>>> {
        // A panic elsewhere while holding the lock leaves the map consistent (inserts are
        // atomic), so a poisoned lock is still usable.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file a source refers to. Names are confined to the treatments folder; a name
    /// without an extension gets `.wav`.
    pub fn resolve(&self, source: &TreatmentSource) -> Result<PathBuf, TreatmentError> {
        match source {
            TreatmentSource::Url(url) => Err(TreatmentError::Remote { url: url.clone() }),
            TreatmentSource::Path(p) => Ok(p.clone()),
            TreatmentSource::Name(name) => {
                let rel = Path::new(name);
                if name.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                    return Err(TreatmentError::OutsideRoot { name: name.clone() });
                }
                let mut path = self.root.join(rel);
                if path.extension().is_none() {
                    path.set_extension("wav");
                }
                Ok(path)
            }
        }
    }

    /// The treatment for `spec`, loading it on first use.
    pub fn get(&self, spec: &TreatmentSpec) -> Result<Arc<Treatment>, TreatmentError> {
        let path = self.resolve(&spec.source)?;
        self.get_path(&path)
    }

    /// The treatment at `path`, loading it on first use.
    pub fn get_path(&self, path: &Path) -> Result<Arc<Treatment>, TreatmentError> {
        if let Some(t) = self.map().get(path) {
            return Ok(Arc::clone(t));
        }
        let loaded = Arc::new(load(path)?);
        let mut map = self.map();
        let entry = map.entry(path.to_path_buf()).or_insert(loaded);
        Ok(Arc::clone(entry))
    }

    /// Forget one file (it is reloaded on next use), e.g. after an operator replaced it.
    pub fn invalidate(&self, path: &Path) -> bool {
        self.map().remove(path).is_some()
    }

    /// Forget everything.
    pub fn clear(&self) {
        self.map().clear();
    }

    /// Number of treatments loaded.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// True when nothing is loaded.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }
}
