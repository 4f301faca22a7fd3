//! Policies from files: directories and files of templates, constraints and Configs, polled for
//! changes and rebuilt after a quiet period; a set that fails to build leaves the previous one in
//! service (logged and counted).
//!
//! Polling rather than inotify: it behaves the same on every file system (network volumes,
//! ConfigMap mounts that swap a symlink), costs a `stat` per file per interval, and a policy
//! change taking a second to apply is immaterial.

use super::metrics::Metrics;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;

/// Extensions read from directories (files named explicitly are always read).
const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// How often to look, and how long the files must stay unchanged before a rebuild.
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    pub interval: Duration,
    pub debounce: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            interval: Duration::from_secs(1),
            debounce: Duration::from_millis(500),
        }
    }
}

/// What identifies the state of the sources: each file with its size and modification time.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(paths: &[PathBuf]) -> Fingerprint {
    let mut files = Vec::new();
    for path in paths {
        collect(path, true, &mut files);
    }
    files.sort();
    files
}

fn collect(path: &Path, explicit: bool, out: &mut Fingerprint) {
    let Ok(meta) = std::fs::metadata(path) else {
        // A vanished file is a change too: it simply leaves the fingerprint.
        return;
    };
    if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            let child = entry.path();
            let hidden = child
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden {
                collect(&child, false, out);
            }
        }
    } else {
        let wanted = explicit
            || path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if wanted {
            out.push((path.to_path_buf(), meta.len(), meta.modified().ok()));
        }
    }
}

/// Builds the set once (an error is returned: there is nothing to serve), then watches the
/// paths on a background thread, rebuilding with `build` after each change. The thread ends
/// when every receiver is dropped.
pub fn watch_paths<P, F>(
    paths: Vec<PathBuf>,
    settings: PollSettings,
    metrics: Arc<Metrics>,
    build: F,
) -> Result<watch::Receiver<Arc<P>>, String>
where
    P: Send + Sync + 'static,
    F: Fn(&[PathBuf]) -> Result<P, String> + Send + 'static,
{
    let mut seen = fingerprint(&paths);
    let initial = build(&paths)?;
    let (sender, receiver) = watch::channel(Arc::new(initial));
    let spawned = std::thread::Builder::new()
        .name("palisade-policy-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(settings.interval);
                if sender.is_closed() {
                    return;
                }
                let mut now = fingerprint(&paths);
                if now == seen {
                    continue;
                }
                // Wait for the writer (an editor, `kubectl cp`, a git checkout) to finish.
                loop {
                    std::thread::sleep(settings.debounce);
                    let later = fingerprint(&paths);
                    if later == now {
                        break;
                    }
                    now = later;
                }
                seen = now;
                match build(&paths) {
                    Ok(set) => {
                        tracing::info!("policies reloaded");
                        if sender.send(Arc::new(set)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        metrics.record_reload_failure();
                        tracing::error!(
                            "policies changed but do not load; the previous set stays in service:\n{e}"
                        );
                    }
                }
            }
        });
    spawned.map_err(|e| format!("cannot start the policy watcher: {e}"))?;
    Ok(receiver)
}

/// Turns a receiver of loaded sets (a directory or a cluster source) into the server's
/// `Option` feed, which starts as `Some` here.
pub fn loaded<P: Send + Sync + 'static>(
    mut source: watch::Receiver<Arc<P>>,
) -> watch::Receiver<Option<Arc<P>>> {
    let (sender, receiver) = watch::channel(Some(source.borrow_and_update().clone()));
    tokio::spawn(async move {
        while source.changed().await.is_ok() {
            let next = source.borrow_and_update().clone();
            if sender.send(Some(next)).is_err() {
                return;
            }
        }
    });
    receiver
}

/// Loads templates, constraints and Gatekeeper Configs from manifest files and directories
/// (other objects, such as Namespaces, become the inventory) and compiles them. Any unreadable
/// document or failing template/constraint fails the whole load, so a half-edited directory
/// never silently drops a constraint.
pub fn load_policy_set(
    paths: &[PathBuf],
    settings: &crate::PolicySettings,
) -> Result<crate::PolicySet, String> {
    let loaded = palisade_kube::load_manifests(paths, &palisade_kube::ManifestLimits::default())
        .map_err(|e| e.to_string())?;
    if !loaded.errors.is_empty() {
        return Err(join_lines(loaded.errors.iter()));
    }
    let objects = loaded.inventory.objects;
    let inventory: Vec<palisade_kube::KubeObject> = objects
        .iter()
        .filter(|o| !is_policy_group(o.group()))
        .cloned()
        .collect();
    let (set, warnings) = crate::PolicySet::compile(&objects, &inventory, settings)
        .map_err(|errors| format!("{} error(s):\n{}", errors.len(), join_lines(errors.iter())))?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(set)
}

fn is_policy_group(group: &str) -> bool {
    matches!(
        group,
        "templates.gatekeeper.sh" | "constraints.gatekeeper.sh" | "config.gatekeeper.sh"
    )
}

fn join_lines<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items
        .map(|i| format!("  {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rebuilds_after_change_and_keeps_old_set_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.yaml");
        std::fs::write(&file, "good-1").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let metrics = Arc::new(Metrics::new());
        let settings = PollSettings {
            interval: Duration::from_millis(20),
            debounce: Duration::from_millis(20),
        };
        let mut rx = watch_paths(
            vec![dir.path().to_path_buf()],
            settings,
            Arc::clone(&metrics),
            |paths: &[PathBuf]| {
                let mut text = String::new();
                for (p, _, _) in fingerprint(paths) {
                    text.push_str(&std::fs::read_to_string(p).map_err(|e| e.to_string())?);
                }
                if text.starts_with("good") {
                    Ok(text)
                } else {
                    Err(format!("cannot compile `{text}`"))
                }
            },
        )
        .unwrap();
        assert_eq!(rx.borrow_and_update().as_str(), "good-1");

        std::fs::write(&file, "broken").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while metrics.reload_counts().1 == 0 {
            assert!(std::time::Instant::now() < deadline, "failure not counted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(rx.borrow().as_str(), "good-1");
        assert!(!rx.has_changed().unwrap());

        std::fs::write(&file, "good-two").unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.borrow().as_str(), "good-two");
    }
}
