//! Throughput of the layer reader on a real layer blob (ignored by default: needs a blob).
//!
//! `PALISADE_LAYER_BENCH=/path/layer.tar.gz cargo test -p palisade-image --release \
//!  --test layers_bench -- --ignored --nocapture`

mod layer_support;

use palisade_image::catalog::all_catalogers;
use palisade_image::layer::{Compression, apply_layer};
use palisade_image::progress::NoProgress;
use palisade_image::scan::merge_layers;
use palisade_image::source::LayerBlob;
use palisade_image::{ImageFs, Limits};
use std::io::Read;
use std::time::Instant;

fn peak_rss_mb() -> f64 {
    palisade_testkit::peak_rss_bytes().map_or(0.0, |b| b as f64 / (1024.0 * 1024.0))
}

#[test]
#[ignore = "needs PALISADE_LAYER_BENCH=<layer blob>"]
fn layer_throughput() {
    let Ok(path) = std::env::var("PALISADE_LAYER_BENCH") else {
        eprintln!("PALISADE_LAYER_BENCH not set");
        return;
    };
    let blob_len = std::fs::metadata(&path).unwrap().len();
    let mut head = [0u8; 4];
    std::fs::File::open(&path)
        .unwrap()
        .read_exact(&mut head)
        .unwrap();
    let mut cats = all_catalogers();
    cats.push(Box::new(layer_support::TestCataloger));

    // Baseline: decompression alone.
    let start = Instant::now();
    let mut n = 0u64;
    match Compression::sniff(&head) {
        Compression::Gzip => {
            let mut d = flate2::bufread::MultiGzDecoder::new(std::io::BufReader::with_capacity(
                256 * 1024,
                std::fs::File::open(&path).unwrap(),
            ));
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let k = d.read(&mut buf).unwrap();
                if k == 0 {
                    break;
                }
                n += k as u64;
            }
        }
        _ => n = blob_len,
    }
    let t = start.elapsed().as_secs_f64();
    eprintln!(
        "decompress only: {:.1} MB in {:.3} s = {:.0} MB/s",
        n as f64 / 1e6,
        t,
        n as f64 / 1e6 / t
    );

    for round in 0..3 {
        let mut fs = ImageFs::new(40);
        let start = Instant::now();
        let stats = apply_layer(
            &mut fs,
            "sha256:bench",
            Box::new(std::fs::File::open(&path).unwrap()),
            &cats,
            &Limits::default(),
        )
        .unwrap();
        let t = start.elapsed().as_secs_f64();
        eprintln!(
            "apply_layer #{round}: {} entries, {:.1} MB decompressed ({:.1} MB compressed) in {:.3} s = {:.0} MB/s; kept {} files / {} bytes, analysed {}, {} paths in view, peak RSS {:.0} MB",
            stats.entries,
            stats.decompressed_bytes as f64 / 1e6,
            stats.compressed_bytes as f64 / 1e6,
            t,
            stats.decompressed_bytes as f64 / 1e6 / t,
            stats.kept_files,
            stats.kept_bytes,
            stats.analyzed_files,
            fs.len(),
            peak_rss_mb()
        );
    }
    let p = path.clone();
    let layers =
        vec![LayerBlob {
            digest: "sha256:bench".into(),
            media_type: String::new(),
            size: blob_len,
            open: Box::new(move || {
                Ok(Box::new(
                    std::fs::File::open(&p).map_err(|e| palisade_image::ImageError::io(&p, e))?,
                ) as Box<dyn Read + Send>)
            }),
        }];
    let start = Instant::now();
    let merged = merge_layers(&layers, &cats, &Limits::default(), &NoProgress).unwrap();
    eprintln!(
        "merge_layers: {:.3} s, {} paths, peak RSS {:.0} MB",
        start.elapsed().as_secs_f64(),
        merged.fs.len(),
        peak_rss_mb()
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = palisade_image::layer::LayerCache::new(dir.path().to_path_buf(), "bench").unwrap();
    for round in ["cold", "warm", "warm"] {
        let start = Instant::now();
        let merged = palisade_image::scan::merge_layers_with(
            &layers,
            &cats,
            &Limits::default(),
            &NoProgress,
            Some(&cache),
        )
        .unwrap();
        eprintln!(
            "merge_layers_with cache ({round}): {:.4} s, {} paths, from cache: {}, peak RSS {:.0} MB",
            start.elapsed().as_secs_f64(),
            merged.fs.len(),
            merged.stats[0].from_cache,
            peak_rss_mb()
        );
    }
}

/// `PALISADE_LAYER_BENCH_MULTI=a.tar.gz:b.tar.gz:…` — one image of several layers, read one by
/// one versus in parallel.
#[test]
#[ignore = "needs PALISADE_LAYER_BENCH_MULTI=<blob>:<blob>…"]
fn parallel_layers_throughput() {
    let Ok(paths) = std::env::var("PALISADE_LAYER_BENCH_MULTI") else {
        eprintln!("PALISADE_LAYER_BENCH_MULTI not set");
        return;
    };
    let paths: Vec<String> = paths.split(':').map(str::to_string).collect();
    let cats = all_catalogers();
    let start = Instant::now();
    let mut fs = ImageFs::new(40);
    let mut bytes = 0;
    for p in &paths {
        let s = apply_layer(
            &mut fs,
            p,
            Box::new(std::fs::File::open(p).unwrap()),
            &cats,
            &Limits::default(),
        )
        .unwrap();
        bytes += s.decompressed_bytes;
    }
    let t = start.elapsed().as_secs_f64();
    eprintln!(
        "sequential: {} layers, {:.1} MB in {:.3} s = {:.0} MB/s",
        paths.len(),
        bytes as f64 / 1e6,
        t,
        bytes as f64 / 1e6 / t
    );
    let layers: Vec<LayerBlob> = paths
        .iter()
        .map(|p| {
            let p2 = p.clone();
            LayerBlob {
                digest: p.clone(),
                media_type: String::new(),
                size: 0,
                open: Box::new(move || {
                    Ok(Box::new(
                        std::fs::File::open(&p2)
                            .map_err(|e| palisade_image::ImageError::io(&p2, e))?,
                    ) as Box<dyn Read + Send>)
                }),
            }
        })
        .collect();
    let start = Instant::now();
    let merged = merge_layers(&layers, &cats, &Limits::default(), &NoProgress).unwrap();
    let t = start.elapsed().as_secs_f64();
    assert_eq!(merged.fs.len(), fs.len());
    eprintln!(
        "parallel ({} cores): {:.3} s = {:.0} MB/s, peak RSS {:.0} MB",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        t,
        bytes as f64 / 1e6 / t,
        peak_rss_mb()
    );
}
