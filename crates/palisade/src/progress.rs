//! Progress bars on stderr for downloads, layer reading and DB work, only on a terminal.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use palisade_image::progress::{NoProgress, Progress};
use palisade_vuln::update::UpdateProgress;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Whether bars should be drawn: stderr is a terminal and the user did not ask for quiet.
pub fn wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// indicatif bars, one per named task.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn start(&self, task: &str, total: u64) {
        let bar = if total > 0 {
            let b = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {msg:40!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            ) {
                b.set_style(style.progress_chars("=> "));
            }
            b
        } else {
            let b = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg:40!} {bytes}") {
                b.set_style(style);
            }
            b
        };
        bar.set_message(short(task));
        let bar = self.multi.add(bar);
        if let Ok(mut m) = self.bars.lock()
            && let Some(old) = m.insert(task.to_string(), bar)
        {
            old.finish_and_clear();
        }
    }

    fn advance(&self, task: &str, bytes: u64) {
        if let Ok(m) = self.bars.lock()
            && let Some(b) = m.get(task)
        {
            b.inc(bytes);
        }
    }

    fn finish(&self, task: &str) {
        if let Ok(mut m) = self.bars.lock()
            && let Some(b) = m.remove(task)
        {
            b.finish_and_clear();
            self.multi.remove(&b);
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

/// Task names are digests and URLs: keep the start, which says what it is.
fn short(task: &str) -> String {
    if task.chars().count() <= 40 {
        task.to_string()
    } else {
        let s: String = task.chars().take(39).collect();
        format!("{s}…")
    }
}

impl Progress for Bars {
    fn start(&self, task: &str, total: u64) {
        Bars::start(self, task, total)
    }
    fn advance(&self, task: &str, bytes: u64) {
        Bars::advance(self, task, bytes)
    }
    fn finish(&self, task: &str) {
        Bars::finish(self, task)
    }
}

impl UpdateProgress for Bars {
    fn download_started(&self, source: &str, _url: &str, total: Option<u64>) {
        Bars::start(self, source, total.unwrap_or(0))
    }
    fn download_progress(&self, source: &str, bytes: u64) {
        Bars::advance(self, source, bytes)
    }
    fn download_finished(&self, source: &str, _bytes: u64) {
        Bars::finish(self, source)
    }
    fn importing(&self, source: &str) {
        Bars::start(self, &format!("importing {source}"), 0)
    }
    fn imported(&self, source: &str, advisories: u64, errors: u64) {
        Bars::finish(self, &format!("importing {source}"));
        let _ = self.multi.println(format!(
            "imported {source}: {advisories} advisories{}",
            if errors > 0 {
                format!(", {errors} entries skipped")
            } else {
                String::new()
            }
        ));
    }
    fn writing(&self, path: &Path) {
        let _ = self.multi.println(format!("writing {}", path.display()));
    }
}

/// Progress for image work.
pub fn image_progress(show: bool) -> Arc<dyn Progress> {
    if show {
        Arc::new(Bars::new())
    } else {
        Arc::new(NoProgress)
    }
}

/// Progress for `db update`.
pub fn update_progress(show: bool) -> Arc<dyn UpdateProgress> {
    if show {
        Arc::new(Bars::new())
    } else {
        Arc::new(palisade_vuln::update::NoProgress)
    }
}
