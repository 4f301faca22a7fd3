//! Namespace objects for constraints with a `namespaceSelector`: the AdmissionRequest names the
//! namespace but does not carry its labels, so the webhook fetches the Namespace (from a live
//! cluster) and caches it briefly.

use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A boxed future returning the Namespace object (`None`: it does not exist) or why not.
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Value>, String>> + Send + 'a>>;

/// Where Namespace objects come from.
pub trait NamespaceLookup: Send + Sync + 'static {
    fn namespace<'a>(&'a self, name: &'a str) -> LookupFuture<'a>;
}

/// Fetches Namespaces through `fetch` and keeps each for `ttl`, so a burst of pod creations in
/// one namespace costs one API call.
pub struct CachedNamespaces<F> {
    fetch: F,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<Value>)>>,
}

impl<F, Fut> CachedNamespaces<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Value>, String>> + Send + 'static,
{
    pub fn new(ttl: Duration, fetch: F) -> Arc<Self> {
        Arc::new(CachedNamespaces {
            fetch,
            ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    fn cached(&self, name: &str) -> Option<Option<Value>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(name)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, object)| object.clone())
    }
}

impl<F, Fut> NamespaceLookup for CachedNamespaces<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Value>, String>> + Send + 'static,
{
    fn namespace<'a>(&'a self, name: &'a str) -> LookupFuture<'a> {
        Box::pin(async move {
            if let Some(hit) = self.cached(name) {
                return Ok(hit);
            }
            let object = (self.fetch)(name.to_string()).await?;
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            // Bounded: drop expired entries before the map grows past a few thousand names.
            if cache.len() > 4096 {
                let ttl = self.ttl;
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            cache.insert(name.to_string(), (Instant::now(), object.clone()));
            Ok(object)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn caches_within_ttl_and_refetches_after() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let lookup = CachedNamespaces::new(Duration::from_millis(50), move |name: String| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok(Some(serde_json::json!({"metadata": {"name": name}})))
            }
        });
        let first = lookup.namespace("team-a").await.unwrap().unwrap();
        assert_eq!(first["metadata"]["name"], "team-a");
        lookup.namespace("team-a").await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(60)).await;
        lookup.namespace("team-a").await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
