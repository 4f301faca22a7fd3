//! The scan driver for images: read every layer (in parallel, one worker per core), apply the
//! layers in order onto one [`ImageFs`], then run the catalogers.

use crate::catalog::Cataloger;
use crate::fs::ImageFs;
use crate::layer::{ChangeSet, ImageBudget, LayerCache, LayerStats, ReadFailure, read_layer_inner};
use crate::progress::Progress;
use crate::sbom::{Sbom, catalog_fs};
use crate::source::{LayerBlob, ResolvedImage};
use crate::{ImageError, Limits};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Scans a resolved image: its layers are read once each (never unpacked to disk), merged in
/// order, and catalogued. Problems that did not stop the scan are in [`Sbom::warnings`].
pub fn scan_image(
    image: ResolvedImage,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<Sbom, ImageError> {
    scan_image_with(image, catalogers, limits, progress, &ScanOptions::default())
}

/// Options of an image scan beyond the caps.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Reuse (and fill) per-layer change sets cached on disk: a warm scan then reads no blob.
    pub layer_cache: Option<LayerCache>,
}

/// [`scan_image`] with options.
pub fn scan_image_with(
    image: ResolvedImage,
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    progress: &dyn Progress,
    opts: &ScanOptions,
) -> Result<Sbom, ImageError> {
    let ResolvedImage {
        mut target, layers, ..
    } = image;
    if target.layers.is_empty() {
        target.layers = layers.iter().map(|l| l.digest.clone()).collect();
    }
    let merged = merge_layers_with(
        &layers,
        catalogers,
        limits,
        progress,
        opts.layer_cache.as_ref(),
    )?;
    let warnings = merged.stats.into_iter().flat_map(|s| s.warnings).collect();
    Ok(catalog_fs(target, &merged.fs, catalogers, warnings))
}

/// The merged view of an image's layers and what reading each layer did.
#[derive(Debug)]
pub struct MergedLayers {
    pub fs: ImageFs,
    /// One entry per layer, base first.
    pub stats: Vec<LayerStats>,
}

/// Reads the layers in parallel (one worker per available core, at most one per layer) and
/// applies them strictly in order as they become ready. Caps of [`Limits`] that span the image
/// are shared by all workers. The first failure (lowest layer first) stops the other workers and
/// is returned.
pub fn merge_layers(
    layers: &[LayerBlob],
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    progress: &dyn Progress,
) -> Result<MergedLayers, ImageError> {
    merge_layers_with(layers, catalogers, limits, progress, None)
}

/// [`merge_layers`], taking change sets from `cache` when it has them and storing the ones it
/// reads (a failure to store is a warning of that layer).
pub fn merge_layers_with(
    layers: &[LayerBlob],
    catalogers: &[Box<dyn Cataloger>],
    limits: &Limits,
    progress: &dyn Progress,
    cache: Option<&LayerCache>,
) -> Result<MergedLayers, ImageError> {
    let budget = ImageBudget::new();
    let mut fs = ImageFs::new(limits.max_symlink_hops);
    let mut stats = Vec::with_capacity(layers.len());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(layers.len());

    let read_one = |blob: &LayerBlob| -> Result<ChangeSet, ReadFailure> {
        progress.start(&blob.digest, blob.size);
        if let Some(cs) = cache.and_then(|c| c.load(&blob.digest, catalogers, limits)) {
            progress.advance(&blob.digest, blob.size);
            progress.finish(&blob.digest);
            cs.charge(&budget, limits)?;
            return Ok(cs);
        }
        let result = (blob.open)()
            .map_err(ReadFailure::Failed)
            .and_then(|r| read_layer_inner(&blob.digest, r, catalogers, limits, &budget, progress));
        progress.finish(&blob.digest);
        let mut cs = result?;
        if let Some(c) = cache
            && let Err(e) = c.store(&cs, catalogers, limits)
        {
            cs.warn(format!("layer cache: {e}"));
        }
        Ok(cs)
    };

    if workers <= 1 {
        for blob in layers {
            match read_one(blob) {
                Ok(cs) => stats.push(cs.apply(&mut fs)),
                Err(ReadFailure::Failed(e)) => return Err(e),
                Err(ReadFailure::Cancelled) => {
                    return Err(ImageError::Layer {
                        layer: blob.digest.clone(),
                        message: "cancelled".into(),
                    });
                }
            }
        }
        return Ok(MergedLayers { fs, stats });
    }

    let next = AtomicUsize::new(0);
    let mut first_error: Option<(usize, ImageError)> = None;
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Result<ChangeSet, ReadFailure>)>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, budget, read_one) = (&next, &budget, &read_one);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= layers.len() || budget.is_cancelled() {
                        break;
                    }
                    let r = read_one(&layers[i]);
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Apply in layer order while later layers are still being read.
        let mut ready: BTreeMap<usize, ChangeSet> = BTreeMap::new();
        let mut applied = 0usize;
        for (i, r) in rx {
            match r {
                Ok(cs) => {
                    ready.insert(i, cs);
                }
                Err(ReadFailure::Failed(e)) => {
                    budget.cancel();
                    if first_error.as_ref().is_none_or(|(j, _)| i < *j) {
                        first_error = Some((i, e));
                    }
                }
                Err(ReadFailure::Cancelled) => {}
            }
            if first_error.is_none() {
                while let Some(cs) = ready.remove(&applied) {
                    stats.push(cs.apply(&mut fs));
                    applied += 1;
                }
            }
        }
    });
    if let Some((_, e)) = first_error {
        return Err(e);
    }
    if stats.len() != layers.len() {
        return Err(ImageError::Layer {
            layer: layers
                .get(stats.len())
                .map(|l| l.digest.clone())
                .unwrap_or_default(),
            message: "layer was not read (worker stopped)".into(),
        });
    }
    Ok(MergedLayers { fs, stats })
}
